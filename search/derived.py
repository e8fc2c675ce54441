"""Figures derived from other measurements: accuracy gained over the untrained base and accuracy
lost to quantisation.

- `gain_over_base`: the candidate's accuracy less the untrained base's (search/reference.py).
- `quant_drop`: the accuracy of the same merged model exported unquantised (fp32 on cpu, fp16 on
  cuda; otherwise the same export knobs) less the candidate's: what the precision cost, as
  Olive's max-degradation goals and NNCF's `max_drop` state it. 0 for an unquantised candidate.
  The unquantised export is a precision sibling's when one was measured (the stage cache holds
  it); when the space judges quant_drop (an objective or a constraint) and none was, the trial
  exports and measures it itself.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from autotune.candidates.export import ExportParams
from autotune.search.run import Run
from autotune.search.stages import make_measurement, make_onnx, measurement_key, onnx_exists

UNQUANTISED = {"cpu": "fp32", "cuda": "fp16"}
DERIVED = ("gain_over_base", "quant_drop")


def uses(run: Run, name: str) -> bool:
    """Whether the space judges `name` (an objective or a constraint)."""
    return name in run.space.objectives or any(
        c.metric == name for c in run.space.parsed_constraints()
    )


def unquantised(exporting: ExportParams) -> ExportParams:
    """The same export knobs at the target's unquantised precision."""
    return replace(
        exporting,
        precision=UNQUANTISED[exporting.target],
        int4_block_size=None,
        int4_accuracy_level=None,
        int4_algo=None,
    )


def derived_metrics(
    run: Run,
    accuracy: float | None,
    reference: dict[str, float] | None,
    merged_key: str,
    merged: Path,
    exporting: ExportParams,
) -> dict[str, float]:
    """gain_over_base and quant_drop, each where its inputs are known or the space needs it."""
    found: dict[str, float] = {}
    if accuracy is None:
        return found
    if reference and "accuracy" in reference:
        found["gain_over_base"] = accuracy - reference["accuracy"]
    if exporting.precision == UNQUANTISED[exporting.target]:
        found["quant_drop"] = 0.0
        return found
    plain = unquantised(exporting)
    measured = unquantised_measurement(run, merged_key, merged, plain, uses(run, "quant_drop"))
    if measured is not None and "accuracy" in measured["metrics"]:
        found["quant_drop"] = measured["metrics"]["accuracy"] - accuracy
    return found


def unquantised_measurement(
    run: Run, merged_key: str, merged: Path, plain: ExportParams, needed: bool
) -> dict[str, Any] | None:
    """The unquantised export's measurement: from the cache, or made now when `needed`."""
    if not needed and not onnx_exists(run, merged_key, plain):
        return None
    onnx_key, onnx_dir = make_onnx(run, merged_key, merged, plain)
    if not needed and not run.cache.has("measure", measurement_key(run, onnx_key)):
        return None
    return make_measurement(run, onnx_key, onnx_dir)
