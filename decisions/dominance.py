"""Dominance, the one rule under every front: at least as good everywhere, better somewhere.

Plain dominance compares point estimates. Noise-aware dominance (`beats`) asks the "better
somewhere" to be distinguishable, judged per objective by the strongest evidence both
candidates have:
- quality figures with per-example scores on the same eval examples (accuracy, exact_match,
  rouge_l, chrf, bleu, nll, kl, top1_agree; perplexity through nll; gain_over_base and
  quant_drop through the headline figure they are differences of): a paired test, the exact
  McNemar test when the scores are right/wrong (0 or 1), else the Wilcoxon signed-rank test.
  quant_drop across two trainings also carries the noise of their unquantised references, which
  this does not count;
- latency figures (the repeats): a two-sided Mann-Whitney rank test, and a shift of at least
  `LATENCY_MIN_EFFECT` of the slower median: on shared cores two measurements of one model taken
  minutes apart drift by a few percent, which a rank test on 30 repeats calls significant;
- any other figure with a 95% interval (macro_f1): intervals that do not overlap;
- figures without noise (size_mb): any difference.
All at the 5% level (evaluators/paired.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from autotune.decisions.candidate import Candidate, Direction
from autotune.evaluators.paired import (
    ALPHA,
    intervals_overlap,
    mcnemar_exact,
    rank_test,
    wilcoxon_paired,
)
from autotune.spaces import LATENCY_METRICS, split_metric

LATENCY_MIN_EFFECT = 0.03


def better(x: float, y: float, direction: Direction | str) -> bool:
    """Whether `x` is strictly better than `y` in `direction`."""
    return x < y if direction == "minimize" else x > y


def no_worse(a: Sequence[float], b: Sequence[float], directions: Sequence[Direction | str]) -> bool:
    """Whether `a` is at least as good as `b` on every objective (point estimates)."""
    return not any(better(y, x, d) for x, y, d in zip(a, b, directions, strict=True))


def dominates(
    a: Sequence[float], b: Sequence[float], directions: Sequence[Direction | str]
) -> bool:
    """True when `a` is at least as good as `b` everywhere and strictly better somewhere."""
    return no_worse(a, b, directions) and any(
        better(x, y, d) for x, y, d in zip(a, b, directions, strict=True)
    )


def pareto_front(
    points: Sequence[Sequence[float]], directions: Sequence[Direction | str]
) -> list[int]:
    """Indices of the points no other point dominates (duplicates all stay on the front)."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)
    ]


def better_by(a: Candidate, b: Candidate, name: str, direction: Direction | str) -> bool:
    """Whether `a` is distinguishably better than `b` on objective `name`."""
    x, y = a.values[name], b.values[name]
    if not better(x, y, direction):
        return False
    first, second = a.evidence, b.evidence
    base, _ = split_metric(name)
    paired = paired_p_value(a, b, base)
    if paired is not None:
        return paired < ALPHA
    if base in LATENCY_METRICS and base in first.samples and base in second.samples:
        test = rank_test(first.samples[base], second.samples[base])
        return test.distinguishable and abs(test.shift) >= LATENCY_MIN_EFFECT * max(abs(x), abs(y))
    if name in first.intervals and name in second.intervals:
        return not intervals_overlap(first.intervals[name], second.intervals[name])
    return True


def right_or_wrong(scores: Sequence[float]) -> bool:
    return all(s in (0.0, 1.0) for s in scores)


def paired_p_value(a: Candidate, b: Candidate, figure: str) -> float | None:
    """The p-value of the paired test of two candidates' per-example scores of `figure`
    (McNemar for right/wrong scores, else Wilcoxon signed-rank); None when either lacks them or
    they cover different examples."""
    x, y = a.evidence.scores.get(figure), b.evidence.scores.get(figure)
    if not x or not y or len(x) != len(y):
        return None
    if right_or_wrong(x) and right_or_wrong(y):
        return mcnemar_exact([s == 1.0 for s in x], [s == 1.0 for s in y]).p_value
    return wilcoxon_paired(x, y).p_value


def values_of(candidate: Candidate, objectives: Mapping[str, Direction | str]) -> list[float]:
    return [candidate.values[name] for name in objectives]


def beats(a: Candidate, b: Candidate, objectives: Mapping[str, Direction | str]) -> bool:
    """Noise-aware dominance: at least as good everywhere (point estimates) and distinguishably
    better somewhere."""
    directions = list(objectives.values())
    if not no_worse(values_of(a, objectives), values_of(b, objectives), directions):
        return False
    return any(better_by(a, b, name, d) for name, d in objectives.items())


def matches(a: Candidate, b: Candidate, objectives: Mapping[str, Direction | str]) -> bool:
    """Whether `a` is as good as `b` up to the noise: `b` is distinguishably better nowhere."""
    return not any(better_by(b, a, name, d) for name, d in objectives.items())
