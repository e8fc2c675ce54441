"""Racing evaluation: a label-scoring candidate stops being scored once it clearly loses.

Label scoring of the eval split is most of a measurement (on SmolLM2, 40-92 s for 592 prompts),
and many candidates lose to a finished one by a margin the first few dozen examples already
show. So a candidate's latency is measured in full first (cheap, and it says who is at least as
fast), then its accuracy on growing prefixes of the eval split (`strategy.racing.stages`). After
each prefix it stops when a completed, feasible trial *dominates* it: at least as good on every
objective but accuracy (point estimates, as `beats` in reports/tiers.py asks of the front), and
more accurate on the same first N examples by the exact McNemar test at `ALPHA`. Prefixes, not
random subsets: every candidate's first N are the same examples, so the comparison is paired.

Only spaces whose objectives this can judge race: accuracy figures a prefix answers for
(accuracy, gain_over_base: the base's accuracy is the same for every candidate) and figures the
latency pass measures in full (latency, size, memory). A space with other objectives
(quant_drop, macro_f1, training figures) scores every candidate on the whole split.

A stopped candidate ends PRUNED: its latency and partial accuracy are recorded under names that
say so (`partial_accuracy`), never under the full measurement's cache key, and PRUNED trials
never enter the front. The test is repeated at each stage against each finished trial without
correction, so a candidate that is in truth no worse is stopped a little more often than ALPHA;
what such a wrong stop costs is one candidate, never a wrong figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from autotune.evaluators.paired import ALPHA, PairedAccuracy, mcnemar_exact
from autotune.search.record import Attr, TrialRecord
from autotune.search.run import Run
from autotune.spaces import LATENCY_METRICS, Space, fmt, split_metric

# Objectives ordered as accuracy on one eval split: what a paired test on a prefix speaks to.
ACCURACY_OBJECTIVES = ("accuracy", "gain_over_base")
# Figures the latency pass measures in full, before any accuracy (evaluators/measurement.py).
MEASURED_FIRST = (*LATENCY_METRICS, "size_mb", "peak_mem_mb", "model_mem_mb", "gpu_mem_mb")


def judged(space: Space) -> bool:
    """Whether racing can judge this space's objectives: an accuracy objective to maximise,
    and every other one measured in full before the accuracy."""
    accuracy = [n for n in space.objectives if split_metric(n)[0] in ACCURACY_OBJECTIVES]
    others = [n for n in space.objectives if n not in accuracy]
    return (
        bool(accuracy)
        and all(space.objectives[n] == "maximize" for n in accuracy)
        and all(split_metric(n)[0] in MEASURED_FIRST for n in others)
    )


def racing_stages(space: Space, labels: list[str] | None, examples: int) -> list[int]:
    """The prefix sizes a candidate is judged after ([]: it is scored on all `examples`)."""
    racing = space.strategy.racing
    if racing is None or not labels or not judged(space):
        return []
    return [n for n in racing.stages if n < examples]


@dataclass(frozen=True)
class Rival:
    """A completed, feasible trial a racing candidate is compared with."""

    number: int
    metrics: dict[str, float]
    correct: str  # right or wrong per eval example, the whole split


def rivals(study: optuna.Study, examples: int) -> list[Rival]:
    """The study's completed feasible trials scored on the whole split of `examples`."""
    found = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        record = TrialRecord.from_trial(trial)
        correct = record.measured.get("correct", "")
        if record.feasible and len(correct) == examples:
            found.append(Rival(record.number, record.metrics, correct))
    return found


@dataclass(frozen=True)
class Verdict:
    """Why a candidate stopped: after `examples` of `of`, trial `rival` dominated it."""

    examples: int
    of: int
    rival: int
    test: PairedAccuracy
    reason: str


def at_least_as_good(space: Space, rival: dict[str, float], figures: dict[str, float]) -> bool:
    """The rival is no worse on each objective but accuracy (point estimates)."""
    for name, direction in space.objectives.items():
        if split_metric(name)[0] in ACCURACY_OBJECTIVES:
            continue
        try:
            x, y = space.metric(rival, name), space.metric(figures, name)
        except KeyError:  # a figure one of them lacks cannot show the rival no worse
            return False
        if x > y if direction == "minimize" else x < y:
            return False
    return True


def dominator(
    space: Space,
    figures: dict[str, float],
    correct: Sequence[bool],
    found: Sequence[Rival],
    of: int,
) -> Verdict | None:
    """The rival that dominates a candidate scored so far (`correct` on the first examples of
    the split, `figures` from its latency pass), the one with the smallest p-value; None when
    none does."""
    n = len(correct)
    beaten: list[tuple[float, int, Rival, PairedAccuracy]] = []
    for rival in found:
        if len(rival.correct) < n or not at_least_as_good(space, rival.metrics, figures):
            continue
        test = mcnemar_exact(rival.correct[:n], correct)
        if test.a_only > test.b_only and test.p_value < ALPHA:
            beaten.append((test.p_value, rival.number, rival, test))
    if not beaten:
        return None
    _, _, rival, test = min(beaten, key=lambda found: found[:2])
    return Verdict(n, of, rival.number, test, reason(space, n, of, rival, test, figures))


def reason(
    space: Space,
    n: int,
    of: int,
    rival: Rival,
    test: PairedAccuracy,
    figures: dict[str, float],
) -> str:
    """'dominated after 64 of 592 examples by trial 3 (accuracy 0.81 vs 0.55 on those 64, ...)'."""
    right = rival.correct[:n].count("1")
    mine = right - test.a_only + test.b_only
    test_text = f"McNemar p={test.p_value:.2g}"
    parts = [f"accuracy {right / n:.3g} vs {mine / n:.3g} on those {n}, {test_text}"]
    for name in space.objectives:
        if split_metric(name)[0] not in ACCURACY_OBJECTIVES:
            x, y = space.metric(rival.metrics, name), space.metric(figures, name)
            parts.append(f"{space.column(name)} {fmt(x)} vs {fmt(y)}")
    return f"dominated after {n} of {of} examples by trial {rival.number} ({'; '.join(parts)})"


class Racer:
    """The stop rule of one trial's raced measurement (`StopRule` in evaluators/measurement.py):
    the study's finished trials, read again at each stage (other workers finish trials too)."""

    def __init__(self, study: optuna.Study, space: Space, stages: list[int], of: int):
        self.study, self.space, self.stages, self.of = study, space, stages, of
        self.verdict: Verdict | None = None

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

    def __init__(self, measurement: dict[str, Any], verdict: Verdict):
        super().__init__(verdict.reason)
        self.measurement, self.verdict = measurement, verdict


def record_raced(
    trial: optuna.Trial,
    run: Run,
    raced: Raced,
    seconds: dict[str, float],
    measured: dict[str, Any],
    onnx_dir: Path,
) -> optuna.TrialPruned:
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
    for key, value in record.to_user_attrs().items():
        trial.set_user_attr(key, value)
    trial.set_user_attr(
        Attr.RACED,
        {
            "examples": verdict.examples,
            "of": verdict.of,
            "dominated_by": verdict.rival,
            "reason": verdict.reason,
        },
    )
    folder = run.trial_dir(trial.number)
    (folder / "metrics.json").write_text(json.dumps(record.to_json(), indent=2))
    (folder / "measurement.json").write_text(json.dumps(measurement, indent=2))
    return optuna.TrialPruned(verdict.reason)
