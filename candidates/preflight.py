"""The preflight export: the base itself, cut to one decoder layer, exported at each precision
of the space and run for one token, before any training.

A model whose architecture the builder lists can still fail to export (a config layout the
builder does not expect, an int4 algorithm that cannot handle a shape); without this check a
study finds out only after a full training, and again after the next one. The builder's
`num_hidden_layers` option makes the export take seconds. Each success is cached (stage
`preflight`, keyed by the base, the export settings and the builder's versions).
"""

from __future__ import annotations

from pathlib import Path

from autotune.candidates.cache import StageCache, digest
from autotune.candidates.export import ExportParams, export_onnx
from autotune.errors import UsageError

OK = "preflight.ok"


class PreflightFailed(UsageError):
    """The base does not export, or does not run, at one of the space's precisions."""


def run_one_token(model_dir: Path, target: str) -> None:
    """Load the model with onnxruntime-genai and generate one token."""
    import onnxruntime_genai as og

    from autotune.evaluators.runtime import open_model

    model = open_model(model_dir, target, threads=1)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=4, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens([1, 2])
    generator.generate_next_token()


def runtime_target(exporting: ExportParams, has_gpu: bool) -> str | None:
    """Where the one-layer model runs: the target, or the CPU for a cuda export on a machine
    without a GPU (cuda exports run on CPU too), or nowhere (bf16 does not load on a CPU)."""
    if exporting.target == "cpu" or has_gpu:
        return exporting.target
    return None if exporting.precision == "bf16" else "cpu"


def preflight(
    base_dir: Path,
    base_key: str,
    exports: list[ExportParams],
    cache: StageCache,
    tools: dict[str, str],
    has_gpu: bool = False,
) -> None:
    """Export and run the one-layer base for each of `exports`; PreflightFailed on the first
    that fails, with the builder's (or the runtime's) message in one line."""
    for exporting in exports:
        key = digest({"base": base_key, "export": exporting.__dict__, "tools": tools})

        def check(out: Path, exporting: ExportParams = exporting) -> None:
            export_onnx(base_dir, exporting, out, extra=("num_hidden_layers=1",))
            where = runtime_target(exporting, has_gpu)
            if where is not None:
                run_one_token(out, where)
            for file in out.glob("*.onnx*"):  # only the verdict is kept
                file.unlink()
            (out / OK).write_text("exported and ran one token\n")

        try:
            cache.get_or_build("preflight", key, check)
        except Exception as error:  # the builder raises anything: report it, stop the study
            message = " ".join(str(error).split()) or type(error).__name__
            raise PreflightFailed(
                f"the base model does not export at {exporting.precision} for "
                f"{exporting.target} (preflight: one decoder layer, before any training): "
                f"{type(error).__name__}: {message[:300]}"
            ) from None
