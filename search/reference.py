"""The untrained base, measured like a candidate: what fine-tuning bought.

Before its first trial a study exports the base model itself at the space's first precision
(with the first value of each export knob) and measures it with the same latency settings as
every candidate. The record is a study attribute, shown in the report and the summary and never
a candidate for selection. Export and measurement are stage-cache entries, keyed by the base,
the eval examples, the precision, the target and the machine, not by the run folder: a resumed
study, a second worker or another study sharing the cache reuses them.

The base is measured only as much as the figures it feeds need (`reference_run`). Where the
space judges gain_over_base (an objective or a constraint), that figure is a difference of two
measurements on the same examples, so the base is measured on the whole eval split. Otherwise
the base only fills the report's comparison row: it is measured on the first
`REFERENCE_EXAMPLES` eval examples (the split is shuffled, so a prefix is a random sample; the
report's example rows are its first ones) with `REFERENCE_REPEATS` timed runs, and a noisy
timing is flagged but not taken again (no wait for a quiet machine). The interval
stays honest because every figure's bootstrap interval is taken over the examples (and repeats)
actually measured, and the record says how many (`measured.eval_examples`): a wider interval,
never a narrower one.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import optuna

from autotune.decisions.record import TrialRecord
from autotune.search.derived import uses
from autotune.search.params import first_export
from autotune.search.record import REFERENCE_STATE, Attr, reference_record, stored_attrs
from autotune.search.run import Run
from autotune.search.stages import GENERATIONS, make_measurement, make_onnx
from autotune.search.trial import how_measured, timed, write_generations
from autotune.spaces import knob_values

# Enough for the base row to tell a base that guesses from a trained model (a 4-label base near
# 25% against one near 90%: a 95% interval of about +-11 points), a fraction of the split.
REFERENCE_EXAMPLES = 64
REFERENCE_REPEATS = 5  # timed runs of the base: the row shows its latency, nothing ranks it


def reference_run(run: Run) -> Run:
    """The run the base is measured in: `run` itself where the space judges gain_over_base,
    else one with the first REFERENCE_EXAMPLES eval examples, at most REFERENCE_REPEATS timed
    runs and no retry of a noisy timing (their own cache key: the measurement key holds the
    examples and the latency settings)."""
    if uses(run, "gain_over_base"):
        return run
    space = run.space
    noise = space.latency.noise.model_copy(update={"retries": 0})  # flagged, not retaken
    latency = space.latency.model_copy(
        update={
            "repeats": min(space.latency.repeats, REFERENCE_REPEATS),
            "stable": None,
            "noise": noise,
        }
    )
    dataset = replace(run.dataset, eval=run.dataset.eval[:REFERENCE_EXAMPLES])
    return replace(run, space=space.model_copy(update={"latency": latency}), dataset=dataset)


def measure_reference(run: Run, study: optuna.Study) -> TrialRecord:
    """The base's record in `study`, measured now unless the study holds it already."""
    known = reference_record(study)
    if known is not None:
        return known
    first = knob_values(run.space.search["precision"])[0]
    exporting = first_export(run.space, run.target, first)
    seconds: dict[str, float] = {}
    measuring = reference_run(run)
    with timed(seconds, "export", run.events, "base reference: export"):
        onnx_key, onnx_dir = make_onnx(run, f"base:{run.base.key}", run.base.path, exporting)
    with timed(seconds, "measure", run.events, "base reference: measure"):
        measurement = make_measurement(measuring, onnx_key, onnx_dir)
    record = TrialRecord(
        number=-1,
        state=REFERENCE_STATE,
        params={k: v for k, v in asdict(exporting).items() if v is not None and k != "target"},
        metrics=measurement["metrics"],
        seconds=seconds,
        onnx_dir=str(onnx_dir),
        measured=how_measured(measuring, measurement, onnx_dir),
    )
    study.set_user_attr(Attr.REFERENCE, stored_attrs(record))
    folder = run.out / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    write_generations(folder / GENERATIONS, measuring, measurement)
    return record
