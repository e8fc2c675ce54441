"""Figures derived from other measurements, made in the trial (the definitions:
decisions/derived.py): gain_over_base from the untrained base's accuracy (search/reference.py),
quant_drop from the unquantised twin's accuracy.

The twin's export is a precision sibling's when one was measured (the stage cache holds it);
when the space judges quant_drop (an objective or a constraint) and none was, the trial exports
and measures it itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotune.candidates.export import ExportParams
from autotune.decisions.derived import gain_over_base, quant_drop, twin_params, unquantised
from autotune.search.params import export_params
from autotune.search.run import Run
from autotune.search.stages import make_measurement, make_onnx, measurement_key, onnx_exists


def uses(run: Run, name: str) -> bool:
    """Whether the space judges `name` (an objective or a constraint)."""
    return name in run.space.objectives or any(
        c.metric == name for c in run.space.parsed_constraints()
    )


def derived_metrics(
    run: Run,
    accuracy: float | None,
    reference: dict[str, float] | None,
    merged_key: str,
    merged: Path,
    values: dict[str, Any],
) -> dict[str, float]:
    """gain_over_base and quant_drop, each where its inputs are known or the space needs it."""
    found: dict[str, float] = {}
    if accuracy is None:
        return found
    if reference and "accuracy" in reference:
        found["gain_over_base"] = gain_over_base(accuracy, reference["accuracy"])
    if unquantised(values["precision"], run.target):
        found["quant_drop"] = 0.0
        return found
    twin = export_params(twin_params(values, run.target), run.target)
    measured = twin_measurement(run, merged_key, merged, twin, uses(run, "quant_drop"))
    if measured is not None and "accuracy" in measured["metrics"]:
        found["quant_drop"] = quant_drop(measured["metrics"]["accuracy"], accuracy)
    return found


def twin_measurement(
    run: Run, merged_key: str, merged: Path, twin: ExportParams, needed: bool
) -> dict[str, Any] | None:
    """The unquantised twin's measurement: from the cache, or made now when `needed`."""
    if not needed and not onnx_exists(run, merged_key, twin):
        return None
    onnx_key, onnx_dir = make_onnx(run, merged_key, merged, twin)
    if not needed and not run.cache.has("measure", measurement_key(run, onnx_key)):
        return None
    return make_measurement(run, onnx_key, onnx_dir)
