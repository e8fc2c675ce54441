"""The untrained base, measured like a candidate: what fine-tuning bought.

Before its first trial a study exports the base model itself at the space's first precision
(with the first value of each export knob) and measures it on the same eval split and latency
settings as every candidate. The record is a study attribute, shown in the report and the
summary and never a candidate for selection. Export and measurement are stage-cache entries,
so a resumed study or a second worker reuses them.
"""

from __future__ import annotations

from dataclasses import asdict

import optuna

from autotune.decisions.record import TrialRecord
from autotune.search.params import first_export
from autotune.search.record import REFERENCE_STATE, Attr, reference_record, stored_attrs
from autotune.search.run import Run
from autotune.search.stages import make_measurement, make_onnx
from autotune.search.trial import how_measured, timed
from autotune.spaces import knob_values


def measure_reference(run: Run, study: optuna.Study) -> TrialRecord:
    """The base's record in `study`, measured now unless the study holds it already."""
    known = reference_record(study)
    if known is not None:
        return known
    first = knob_values(run.space.search["precision"])[0]
    exporting = first_export(run.space, run.target, first)
    seconds: dict[str, float] = {}
    with timed(seconds, "export", run.events, "base reference: export"):
        onnx_key, onnx_dir = make_onnx(run, f"base:{run.base.key}", run.base.path, exporting)
    with timed(seconds, "measure", run.events, "base reference: measure"):
        measurement = make_measurement(run, onnx_key, onnx_dir)
    record = TrialRecord(
        number=-1,
        state=REFERENCE_STATE,
        params={k: v for k, v in asdict(exporting).items() if v is not None and k != "target"},
        metrics=measurement["metrics"],
        seconds=seconds,
        onnx_dir=str(onnx_dir),
        measured=how_measured(run, measurement, onnx_dir),
    )
    study.set_user_attr(Attr.REFERENCE, stored_attrs(record))
    return record
