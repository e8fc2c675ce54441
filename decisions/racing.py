"""Racing's rule: the finished trial that dominates a candidate scored on a prefix of the split.

A candidate's latency is measured in full first, then its accuracy on growing prefixes of the
eval split. After each prefix it stops when a completed, feasible trial *dominates* it: no worse
on every objective but accuracy (point estimates, decisions/dominance.py), and more accurate on
the same first N examples by the exact McNemar test at the 5% level. Prefixes, not random
subsets: every candidate's first N are the same examples, so the comparison is paired.

Only spaces whose objectives this can judge race: accuracy figures a prefix answers for
(accuracy, gain_over_base: the base's accuracy is the same for every candidate) and figures the
latency pass measures in full (latency, size, memory).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autotune.decisions.dominance import no_worse
from autotune.evaluators.paired import PairedAccuracy, mcnemar_exact
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


@dataclass(frozen=True)
class Dominated:
    """Why a candidate stopped: after `examples` of `of`, trial `rival` dominated it."""

    examples: int
    of: int
    rival: int
    test: PairedAccuracy
    reason: str


def others_no_worse(space: Space, rival: dict[str, float], figures: dict[str, float]) -> bool:
    """The rival is no worse on each objective but accuracy (point estimates)."""
    names = [n for n in space.objectives if split_metric(n)[0] not in ACCURACY_OBJECTIVES]
    try:
        ours = [space.metric(figures, n) for n in names]
        theirs = [space.metric(rival, n) for n in names]
    except KeyError:  # a figure one of them lacks cannot show the rival no worse
        return False
    return no_worse(theirs, ours, [space.objectives[n] for n in names])


def dominator(
    space: Space,
    figures: dict[str, float],
    correct: Sequence[bool],
    found: Sequence[Rival],
    of: int,
) -> Dominated | None:
    """The rival that dominates a candidate scored so far (`correct` on the first examples of
    the split, `figures` from its latency pass), the one with the smallest p-value; None when
    none does."""
    n = len(correct)
    beaten: list[tuple[float, int, Rival, PairedAccuracy]] = []
    for rival in found:
        if len(rival.correct) < n or not others_no_worse(space, rival.metrics, figures):
            continue
        test = mcnemar_exact(rival.correct[:n], correct)
        if test.a_only > test.b_only and test.distinguishable:
            beaten.append((test.p_value, rival.number, rival, test))
    if not beaten:
        return None
    _, _, rival, test = min(beaten, key=lambda found: found[:2])
    return Dominated(n, of, rival.number, test, reason(space, n, of, rival, test, figures))


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
