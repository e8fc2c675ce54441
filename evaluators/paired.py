"""Paired comparisons of two candidates measured on the same eval examples.

Two accuracies with overlapping intervals can still be told apart when both candidates saw the
same examples: only the examples on which they disagree carry information (McNemar). Latency
repeats are not paired, so they get a rank test on the two samples. Continuous per-example scores
(ROUGE-L, nll, KL) get the Wilcoxon signed-rank test on their paired differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class PairedAccuracy:
    """The outcome of McNemar's test on two candidates' per-example correctness."""

    a_only: int  # examples A got right and B got wrong
    b_only: int  # examples B got right and A got wrong
    n: int  # examples compared
    p_value: float
    difference: float  # A's accuracy minus B's: (a_only - b_only) / n
    examples_to_separate: int | None  # eval examples that would make `difference` significant

    @property
    def distinguishable(self) -> bool:
        return self.p_value < ALPHA


@dataclass(frozen=True)
class PairedScores:
    """The outcome of a Wilcoxon signed-rank test on two candidates' per-example scores."""

    n: int  # examples compared
    difference: float  # mean of a - b over the examples
    p_value: float

    @property
    def distinguishable(self) -> bool:
        return self.p_value < ALPHA


@dataclass(frozen=True)
class PairedLatency:
    """The outcome of a rank test on two candidates' latency repeats."""

    p_value: float
    shift: float  # Hodges-Lehmann estimate of a - b

    @property
    def distinguishable(self) -> bool:
        return self.p_value < ALPHA


def as_bools(correct: str | Sequence[bool]) -> list[bool]:
    """Per-example correctness as booleans, from a sequence or from the "0101..." string that
    `AccuracyResult.to_json()` stores."""
    if isinstance(correct, str):
        stray = set(correct) - {"0", "1"}
        if stray:
            raise ValueError(f"correctness string may hold only '0' and '1', not {sorted(stray)}")
        return [c == "1" for c in correct]
    return [bool(c) for c in correct]


def mcnemar_exact(a: str | Sequence[bool], b: str | Sequence[bool]) -> PairedAccuracy:
    """The exact two-sided McNemar test: under "A and B are equally accurate" each discordant
    example is a fair coin, so the p-value is a binomial tail, computed with integers so it is
    exact on small counts where the chi-squared approximation is not."""
    a, b = as_bools(a), as_bools(b)
    if len(a) != len(b):
        raise ValueError(f"paired results must cover the same examples: {len(a)} vs {len(b)}")
    n = len(a)
    if n == 0:
        raise ValueError("no examples to compare (0 vs 0)")
    a_only = sum(x and not y for x, y in zip(a, b, strict=True))
    b_only = sum(y and not x for x, y in zip(a, b, strict=True))
    return PairedAccuracy(
        a_only=a_only,
        b_only=b_only,
        n=n,
        p_value=binomial_two_sided(a_only, b_only),
        difference=(a_only - b_only) / n,
        examples_to_separate=examples_to_separate(a_only, b_only, n),
    )


def binomial_two_sided(a_only: int, b_only: int) -> float:
    """min(1, 2 * P[X <= min(a_only, b_only)]) for X ~ Binomial(a_only + b_only, 1/2)."""
    d, k = a_only + b_only, min(a_only, b_only)
    if d == 0:
        return 1.0
    tail = sum(math.comb(d, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**d)


def examples_to_separate(
    a_only: int, b_only: int, n: int, alpha: float = ALPHA, power: float = 0.8
) -> int | None:
    """How many eval examples would make the observed difference significant (at `alpha`, with
    probability `power`), assuming the observed rates of disagreement hold: Connor's (1987)
    sample size for McNemar's test. None when there is no difference to separate."""
    p_disc = (a_only + b_only) / n
    delta = abs(a_only - b_only) / n
    if delta == 0:
        return None
    z_alpha = stats.norm.ppf(1 - alpha / 2)
    z_power = stats.norm.ppf(power)
    root = z_alpha * math.sqrt(p_disc) + z_power * math.sqrt(p_disc - delta**2)
    return math.ceil(root**2 / delta**2)


def wilcoxon_paired(a: Sequence[float], b: Sequence[float]) -> PairedScores:
    """The two-sided Wilcoxon signed-rank test on per-example score differences: it uses the
    size of each difference, not only its sign, and needs no normal noise. Ties at zero are
    split between the signs ("zsplit"), so many equal scores make the test conservative rather
    than dropping examples; when every difference is zero the p-value is 1."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired scores must cover the same examples: {len(x)} vs {len(y)}")
    if x.size == 0:
        raise ValueError("no examples to compare (0 vs 0)")
    differences = x - y
    if not np.any(differences):
        return PairedScores(n=int(x.size), difference=0.0, p_value=1.0)
    result = stats.wilcoxon(differences, zero_method="zsplit", alternative="two-sided")
    return PairedScores(
        n=int(x.size), difference=float(differences.mean()), p_value=float(result.pvalue)
    )


def rank_test(a: Sequence[float], b: Sequence[float]) -> PairedLatency:
    """A two-sided Mann-Whitney U test on two candidates' latency repeats: it needs no normal
    noise, and one slow outlier repeat cannot swing it. Under 3 repeats on a side it cannot
    tell anything apart, so the p-value is 1."""
    if len(a) < 3 or len(b) < 3:
        return PairedLatency(p_value=1.0, shift=hodges_lehmann(a, b))
    result = stats.mannwhitneyu(a, b, alternative="two-sided", method="auto")
    return PairedLatency(p_value=float(result.pvalue), shift=hodges_lehmann(a, b))


def hodges_lehmann(a: Sequence[float], b: Sequence[float]) -> float:
    """The median of all pairwise differences a_i - b_j: the shift estimate matching the rank
    test (nan when either side is empty)."""
    if len(a) == 0 or len(b) == 0:
        return math.nan
    differences = np.subtract.outer(np.asarray(a, float), np.asarray(b, float))
    return float(np.median(differences))


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two (low, high) intervals share a point: the conservative check for when only
    intervals were stored, not the samples (touching ends count as overlapping)."""
    return a[0] <= b[1] and b[0] <= a[1]
