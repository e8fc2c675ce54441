"""Racing evaluation in the study: a label-scoring candidate stops being scored once it clearly
loses (the rule: decisions/racing.py).

Label scoring of the eval split is most of a measurement (on SmolLM2, 40-92 s for 592 prompts),
and many candidates lose to a finished one by a margin the first few dozen examples already
show. A space with objectives a prefix cannot answer for (quant_drop, macro_f1, training figures)
scores every candidate on the whole split.

A stopped candidate ends PRUNED: its latency and partial accuracy are recorded under names that
say so (`partial_accuracy`), never under the full measurement's cache key, and PRUNED trials
never enter the front. The test is repeated at each stage against each finished trial without
correction, so a candidate that is in truth no worse is stopped a little more often than 5%;
what such a wrong stop costs is one candidate, never a wrong figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

from autotune.decisions.racing import Dominated, Rival, dominator, racing_stages
from autotune.decisions.record import Raced as RacedRecord
from autotune.decisions.record import TrialRecord, Verdict
from autotune.search.record import Attr, Stopped, metrics_json, read_trials, stored_attrs
from autotune.search.run import Run
from autotune.spaces import Space


def rivals(study: optuna.Study, examples: int) -> list[Rival]:
    """The study's completed feasible trials scored on the whole split of `examples`."""
    found = []
    for record in read_trials(study):
        correct = record.measured.get("correct", "")
        if record.feasible and len(correct) == examples:
            found.append(Rival(record.number, record.metrics, correct))
    return found


class Racer:
    """The stop rule of one trial's raced measurement (`StopRule` in evaluators/measurement.py):
    the study's finished trials, read again at each stage (other workers finish trials too)."""

    def __init__(self, study: optuna.Study, space: Space, stages: list[int], of: int):
        self.study, self.space, self.stages, self.of = study, space, stages, of
        self.verdict: Dominated | None = None

    def __call__(self, n: int, correct: list[bool], figures: dict[str, float]) -> str | None:
        self.verdict = dominator(self.space, figures, correct, rivals(self.study, self.of), self.of)
        return self.verdict.reason if self.verdict else None


def racer(run: Run, study: optuna.Study) -> Racer | None:
    """The stop rule for a trial of `study`, or None where racing does not apply."""
    of = len(run.dataset.eval)
    stages = racing_stages(run.space, run.dataset.labels, of)
    return Racer(study, run.space, stages, of) if stages else None


class Raced(Exception):
    """A raced measurement stopped: its partial measurement (measurement.json's shape)."""

    def __init__(self, measurement: dict[str, Any], verdict: Dominated):
        super().__init__(verdict.reason)
        self.measurement, self.verdict = measurement, verdict


def record_raced(
    trial: optuna.Trial,
    run: Run,
    raced: Raced,
    seconds: dict[str, float],
    measured: dict[str, Any],
    onnx_dir: Path,
) -> Stopped:
    """Record a stopped candidate's partial figures on its trial and in trials/<n>/ (its
    per-example correctness as `partial_correct`, which no paired comparison reads); the
    exception that ends the trial as pruned."""
    measurement, verdict = raced.measurement, raced.verdict
    measured = {**measured, "partial": True, "scored_examples": verdict.examples}
    measured["partial_correct"] = measured.pop("correct", "")
    record = TrialRecord(
        number=trial.number,
        state=optuna.trial.TrialState.PRUNED.name,
        params=dict(trial.user_attrs.get(Attr.PARAMS, {})),
        metrics=dict(measurement["metrics"]),
        seconds={**seconds, "measure": round(sum(measurement["seconds"].values()), 3)},
        onnx_dir=str(onnx_dir),
        measured=measured,
    )
    for key, value in stored_attrs(record).items():
        trial.set_user_attr(key, value)
    stored = RacedRecord(verdict.examples, verdict.of, verdict.rival, verdict.reason)
    trial.set_user_attr(Attr.RACED, stored.to_json())
    folder = run.trial_dir(trial.number)
    (folder / "metrics.json").write_text(json.dumps(metrics_json(record), indent=2))
    (folder / "measurement.json").write_text(json.dumps(measurement, indent=2))
    return Stopped(Verdict.RACED, verdict.reason)
