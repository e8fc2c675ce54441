"""Export a merged model to ONNX with the onnxruntime-genai model builder.

The builder writes an onnxruntime-genai model folder (model.onnx, its weights, genai_config.json
and the tokenizer) for one precision and one execution provider. It runs on a CPU for every
target: a cuda export needs no GPU.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from autotune.candidates.export_summary import write_summary

# Builder option names (onnxruntime-genai 0.18) for the space's export knobs. The older
# `int4_block_size` / `int4_accuracy_level` option names are silently ignored by 0.18.
BUILDER_OPTIONS = {
    "int4_block_size": "block_size",
    "int4_accuracy_level": "accuracy_level",
    "int4_algo": "algo_config",
}


@dataclass(frozen=True)
class ExportParams:
    """Everything that determines an ONNX model, besides the merged model."""

    precision: str
    target: str
    int4_block_size: int | None = None
    int4_accuracy_level: int | None = None
    int4_algo: str | None = None  # default | rtn | k_quant | rtn_last | k_quant_last | ...
    shared_embeddings: bool | None = None  # None: the builder's default (the model's tying)
    prune_lm_head: bool | None = None

    def extra_options(self) -> list[str]:
        """`KEY=VALUE` strings for the builder; int4 options only matter for int4."""
        options = []
        for knob in ("shared_embeddings", "prune_lm_head"):
            value = getattr(self, knob)
            if value is not None:
                options.append(f"{knob}={str(value).lower()}")
        if self.precision != "int4":
            return options
        for knob, option in BUILDER_OPTIONS.items():
            value = getattr(self, knob)
            if value is not None:
                options.append(f"{option}={value}")
        return options


# Loggers the export writes to (neural_compressor: the k_quant algorithm; onnx_ir: the model
# writer). Their handlers hold the terminal's stderr, so redirecting stderr does not catch them.
BUILDER_LOGGERS = ("onnxruntime", "onnx_ir", "neural_compressor")


@contextlib.contextmanager
def logs_to(stream: io.StringIO, names: tuple[str, ...]) -> Iterator[None]:
    """Send the named loggers' WARNING and worse records to `stream` only, for the block."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate, logger.level))
        logger.handlers, logger.propagate = [handler], False
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)


def export_onnx(
    merged_dir: Path, params: ExportParams, out: Path, extra: tuple[str, ...] = ()
) -> Path:
    """Run the model builder on `merged_dir`, writing the ONNX model folder to `out`; `extra`
    builder options (`KEY=VALUE`) come after the params' own."""
    from onnxruntime_genai.models.builder import create_model, parse_extra_options

    # The builder and the quantiser print progress and log lines; keep them in a log file.
    log = io.StringIO()
    with (
        tempfile.TemporaryDirectory(prefix="autotune-builder-") as cache_dir,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        logs_to(log, BUILDER_LOGGERS),
    ):
        where = (None, str(merged_dir), str(out), params.precision, params.target, cache_dir)
        options = parse_extra_options(*where, [*params.extra_options(), *extra])
        create_model(*where, **options)
    (out / "autotune_builder.log").write_text(log.getvalue())
    if not (out / "genai_config.json").is_file():
        raise RuntimeError(f"the model builder wrote no genai_config.json to {out}")
    write_summary(out)  # which weights ended in which precision
    return out
