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
from dataclasses import dataclass
from pathlib import Path

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

    def extra_options(self) -> list[str]:
        """`KEY=VALUE` strings for the builder; int4 options only matter for int4."""
        if self.precision != "int4":
            return []
        options = []
        for knob, option in BUILDER_OPTIONS.items():
            value = getattr(self, knob)
            if value is not None:
                options.append(f"{option}={value}")
        return options


def export_onnx(merged_dir: Path, params: ExportParams, out: Path) -> Path:
    """Run the model builder on `merged_dir`, writing the ONNX model folder to `out`."""
    from onnxruntime_genai.models.builder import create_model, parse_extra_options

    # The builder and the quantiser print progress and INFO lines; keep them in a log file.
    for name in ("onnxruntime", "neural_compressor"):  # neural_compressor: the k_quant algorithm
        logging.getLogger(name).setLevel(logging.WARNING)
    log = io.StringIO()
    with (
        tempfile.TemporaryDirectory(prefix="autotune-builder-") as cache_dir,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        where = (None, str(merged_dir), str(out), params.precision, params.target, cache_dir)
        options = parse_extra_options(*where, params.extra_options())
        create_model(*where, **options)
    (out / "autotune_builder.log").write_text(log.getvalue())
    if not (out / "genai_config.json").is_file():
        raise RuntimeError(f"the model builder wrote no genai_config.json to {out}")
    return out
