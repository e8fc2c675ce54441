"""Figures derived from other measurements, each defined once.

Both are differences of the space's headline quality figure (`Space.headline_metric`: accuracy,
rouge_l, a custom module's figure, ...), oriented so that a positive figure is the good news for
gain_over_base and the bad news for quant_drop (nll and the other lower-is-better figures flip).
- `gain_over_base`: the candidate's figure less the untrained base's (search/reference.py).
- `quant_drop`: the figure of the candidate's *unquantised twin* less the candidate's: what the
  precision cost, as Olive's max-degradation goals and NNCF's `max_drop` state it; 0 for an
  unquantised candidate. The twin is the same training exported with the same export knobs at
  the target's unquantised precision (fp32 on cpu, fp16 on cuda), without the int4 options.
  The search measures the twin through the stage cache (search/derived.py); the reports fill in
  the figure for a trial whose twin was measured after it (`with_quant_drop`), by the same rule.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from autotune.decisions.record import TrialRecord
from autotune.spaces.knobs import INT4_KNOBS
from autotune.spaces.metrics import LOWER_IS_BETTER

UNQUANTISED = {"cpu": "fp32", "cuda": "fp16"}
DERIVED = ("gain_over_base", "quant_drop")


def unquantised(precision: str, target: str) -> bool:
    return precision == UNQUANTISED[target]


def twin_params(params: dict[str, Any], target: str) -> dict[str, Any]:
    """The parameters of the unquantised twin of a trial with `params`."""
    kept = {k: v for k, v in params.items() if k not in INT4_KNOBS}
    return {**kept, "precision": UNQUANTISED[target]}


def is_twin(record: TrialRecord, other: TrialRecord, target: str) -> bool:
    """Whether `other` is `record`'s unquantised twin: the same training, the twin's knobs."""

    def knobs(params: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in params.items() if k not in INT4_KNOBS}

    same_training = bool(record.adapter_key) and other.adapter_key == record.adapter_key
    return same_training and knobs(other.params) == knobs(twin_params(record.params, target))


def gain_over_base(value: float, base_value: float, figure: str = "accuracy") -> float:
    sign = -1 if figure in LOWER_IS_BETTER else 1
    return sign * (value - base_value)


def quant_drop(twin_value: float, value: float, figure: str = "accuracy") -> float:
    sign = -1 if figure in LOWER_IS_BETTER else 1
    return sign * (twin_value - value)


def with_quant_drop(
    records: list[TrialRecord], target: str, figure: str = "accuracy"
) -> list[TrialRecord]:
    """The records, each completed quantised one that lacks `quant_drop` given it from its
    unquantised twin when the twin completed (after it, so the trial could not read it)."""
    complete = [r for r in records if r.complete and figure in r.metrics]
    found = []
    for record in records:
        measured = record.complete and figure in record.metrics
        missing = measured and "quant_drop" not in record.metrics
        if missing and not unquantised(record.params.get("precision", ""), target):
            twin = next((o for o in complete if is_twin(record, o, target)), None)
            if twin is not None:
                drop = quant_drop(twin.metrics[figure], record.metrics[figure], figure)
                record = replace(record, metrics={**record.metrics, "quant_drop": drop})
        found.append(record)
    return found
