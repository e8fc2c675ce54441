"""Figures that need another model's measurement, made in the trial (the definitions:
decisions/derived.py): gain_over_base from the untrained base's (search/reference.py); and, from
the unquantised twin's measurement, quant_drop and the agreement figures (kl, top1_agree, which
the measure stage computes from the twin's log-probabilities: evaluators/likelihood.py).

A quantised trial's twin is measured before the trial's own measurement: from the stage cache
when a precision sibling measured it, or now when the space judges a twin figure or searches the
twin's precision (its sibling would measure it anyway; measured first, it serves every quantised
sibling). An unquantised trial is its own twin: quant_drop 0, kl 0, top1_agree 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autotune.candidates.export import ExportParams
from autotune.decisions.derived import (
    UNQUANTISED,
    gain_over_base,
    quant_drop,
    twin_params,
    unquantised,
)
from autotune.search.params import export_params
from autotune.search.run import Run
from autotune.search.stages import (
    Twin,
    make_measurement,
    make_onnx,
    measurement_key,
    onnx_exists,
)
from autotune.spaces import knob_values

TWIN_FIGURES = ("quant_drop", "kl", "top1_agree")


def uses(run: Run, name: str) -> bool:
    """Whether the space judges `name` (an objective or a constraint)."""
    return name in run.space.objectives or any(
        c.metric == name for c in run.space.parsed_constraints()
    )


def twin_of(run: Run, merged_key: str, merged: Path, values: dict[str, Any]) -> Twin | None:
    """The measured unquantised twin of a quantised trial (None for an unquantised one, or when
    the twin is neither cached nor worth measuring now)."""
    if unquantised(values["precision"], run.target):
        return None
    searched = UNQUANTISED[run.target] in knob_values(run.space.search["precision"])
    needed = searched or any(uses(run, name) for name in TWIN_FIGURES)
    twin = export_params(twin_params(values, run.target), run.target)
    return twin_measurement(run, merged_key, merged, twin, needed)


def twin_measurement(
    run: Run, merged_key: str, merged: Path, twin: ExportParams, needed: bool
) -> Twin | None:
    """The unquantised twin's measurement: from the cache, or made now when `needed`."""
    if not needed and not onnx_exists(run, merged_key, twin):
        return None
    onnx_key, onnx_dir = make_onnx(run, merged_key, merged, twin)
    kept = measurement_key(run, onnx_key, keep_topk=True)  # as the unquantised trial keeps it
    if not needed and not run.cache.has("measure", kept):
        return None
    return Twin(onnx_key, make_measurement(run, onnx_key, onnx_dir, keep_topk=True))


def derived_metrics(
    run: Run,
    metrics: dict[str, float],
    reference: dict[str, float] | None,
    twin: Twin | None,
    values: dict[str, Any],
) -> dict[str, float]:
    """gain_over_base and quant_drop on the space's headline figure, where their inputs are
    known; for an unquantised trial, the agreement figures of a model with itself."""
    figure = run.space.headline_metric()
    found: dict[str, float] = {}
    if figure not in metrics:
        return found
    if reference and figure in reference:
        found["gain_over_base"] = gain_over_base(metrics[figure], reference[figure], figure)
    if unquantised(values["precision"], run.target):
        return {**found, "quant_drop": 0.0, "kl": 0.0, "top1_agree": 1.0}
    twin_metrics = twin.measurement["metrics"] if twin is not None else {}
    if figure in twin_metrics:
        found["quant_drop"] = quant_drop(twin_metrics[figure], metrics[figure], figure)
    return found
