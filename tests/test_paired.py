"""Paired comparisons, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from autotune.evaluators.paired import (
    as_bools,
    examples_to_separate,
    intervals_overlap,
    mcnemar_exact,
    rank_test,
    wilcoxon_paired,
)
from autotune.evaluators.stats import bootstrap_mean_interval


def paired(a_only: int, b_only: int, both: int = 3, neither: int = 2) -> tuple[str, str]:
    """Correctness strings with the given discordant counts, padded with concordant examples."""
    a = "1" * a_only + "0" * b_only + "1" * both + "0" * neither
    b = "0" * a_only + "1" * b_only + "1" * both + "0" * neither
    return a, b


@pytest.mark.parametrize(
    ("a_only", "b_only", "p"),
    [
        (1, 0, 1.0),  # 2 * 1/2 = 1
        (5, 0, 2 / 32),  # 0.0625
        (6, 0, 2 / 64),  # 0.03125
        (8, 2, 2 * (1 + 10 + 45) / 1024),  # 0.109375
    ],
)
def test_mcnemar_hand_computed(a_only: int, b_only: int, p: float) -> None:
    result = mcnemar_exact(*paired(a_only, b_only))
    assert (result.a_only, result.b_only, result.n) == (a_only, b_only, a_only + b_only + 5)
    assert result.p_value == pytest.approx(p, rel=1e-12)
    assert result.difference == pytest.approx((a_only - b_only) / result.n)


def test_significance_threshold_lies_between_five_and_six_discordant() -> None:
    assert not mcnemar_exact(*paired(5, 0)).distinguishable
    assert mcnemar_exact(*paired(6, 0)).distinguishable


def test_identical_vectors() -> None:
    result = mcnemar_exact([True, False, True], [True, False, True])
    assert result.p_value == 1.0
    assert result.difference == 0.0
    assert result.examples_to_separate is None
    assert not result.distinguishable


def test_swapping_sides_negates_difference_only() -> None:
    a, b = paired(9, 3)
    forward, backward = mcnemar_exact(a, b), mcnemar_exact(b, a)
    assert forward.p_value == backward.p_value
    assert forward.difference == -backward.difference > 0
    assert (forward.a_only, forward.b_only) == (backward.b_only, backward.a_only)


def test_agrees_with_scipy_binomtest() -> None:
    rng = np.random.default_rng(7)
    for _ in range(6):
        a = rng.random(60) < 0.7
        b = rng.random(60) < 0.6
        result = mcnemar_exact(list(a), list(b))
        d, k = result.a_only + result.b_only, min(result.a_only, result.b_only)
        assert d > 0
        assert result.p_value == pytest.approx(stats.binomtest(k, d, 0.5).pvalue, rel=1e-9)


def test_string_input() -> None:
    result = mcnemar_exact("1100", "1010")  # example 1: only A; example 2: only B
    assert (result.a_only, result.b_only, result.n) == (1, 1, 4)
    assert result.p_value == 1.0
    assert result.difference == 0.0


def test_as_bools() -> None:
    assert as_bools("0110") == [False, True, True, False]
    assert as_bools([1, 0]) == [True, False]
    with pytest.raises(ValueError):
        as_bools("01x1")


def test_mismatched_or_empty_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"3.*4"):
        mcnemar_exact("101", "1011")
    with pytest.raises(ValueError):
        mcnemar_exact("", "")


def test_examples_to_separate_hand_computed() -> None:
    # p_disc = 16/200 = 0.08, delta = 8/200 = 0.04
    # 1.959964 * sqrt(0.08) = 1.959964 * 0.2828427 = 0.5543615
    # 0.841621 * sqrt(0.08 - 0.0016) = 0.841621 * 0.28 = 0.2356539
    # (0.5543615 + 0.2356539)^2 / 0.04^2 = 0.6241244 / 0.0016 = 390.08 -> 391
    assert examples_to_separate(12, 4, 200) == 391
    assert mcnemar_exact(*paired(12, 4, both=150, neither=34)).examples_to_separate == 391


def test_examples_to_separate_none_without_difference() -> None:
    assert examples_to_separate(7, 7, 100) is None
    assert examples_to_separate(0, 0, 100) is None


def test_examples_to_separate_grows_as_difference_shrinks() -> None:
    # the same 16 disagreements out of 200, split ever more evenly
    needed = [examples_to_separate(a, 16 - a, 200) for a in (14, 12, 10, 9)]
    assert needed == sorted(needed)
    assert len(set(needed)) == 4


def test_rank_test_separated_samples() -> None:
    result = rank_test([float(x) for x in range(10, 20)], [float(x) for x in range(20, 30)])
    assert result.distinguishable
    assert result.p_value < 1e-3
    assert result.shift == -10.0  # pairwise differences run -19..-1, median -10


def test_rank_test_identical_samples() -> None:
    samples = [1.0, 2.0, 3.0, 4.0, 5.0]
    result = rank_test(samples, samples)
    assert not result.distinguishable
    assert result.shift == 0.0


def test_rank_test_small_shift_inside_noise() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(100.0, 1.0, 10)
    b = rng.normal(100.1, 1.0, 10)
    assert not rank_test(list(a), list(b)).distinguishable


def test_rank_test_too_few_samples() -> None:
    result = rank_test([1.0, 2.0], [10.0, 11.0, 12.0, 13.0])
    assert result.p_value == 1.0
    assert not result.distinguishable
    assert result.shift == -10.0  # differences -12,-11,-10,-9 / -11,-10,-9,-8: median -10


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((1.0, 2.0), (3.0, 4.0), False),
        ((3.0, 4.0), (1.0, 2.0), False),
        ((1.0, 3.0), (2.0, 4.0), True),
        ((1.0, 4.0), (2.0, 3.0), True),  # one inside the other
        ((1.0, 2.0), (2.0, 3.0), True),  # touching ends
    ],
)
def test_intervals_overlap(a: tuple[float, float], b: tuple[float, float], overlap: bool) -> None:
    assert intervals_overlap(a, b) is overlap
    assert intervals_overlap(b, a) is overlap


def test_wilcoxon_tells_a_small_consistent_shift() -> None:
    rng = np.random.default_rng(3)
    b = rng.uniform(0.2, 0.8, size=100)
    a = b + rng.normal(0.02, 0.02, size=100)  # better on most examples, by a little
    result = wilcoxon_paired(list(a), list(b))
    assert result.n == 100
    assert result.difference == pytest.approx(float(np.mean(a - b)))
    assert result.distinguishable
    assert result.p_value == pytest.approx(
        stats.wilcoxon(a - b, zero_method="zsplit").pvalue, rel=1e-12
    )


def test_wilcoxon_does_not_separate_noise() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.uniform(size=100), rng.uniform(size=100)
    assert not wilcoxon_paired(a, b).distinguishable


def test_wilcoxon_identical_scores_p_one() -> None:
    scores = [0.1, 0.5, 0.5, 0.9]
    result = wilcoxon_paired(scores, scores)
    assert (result.p_value, result.difference, result.distinguishable) == (1.0, 0.0, False)


def test_wilcoxon_needs_paired_examples() -> None:
    with pytest.raises(ValueError, match="3 vs 2"):
        wilcoxon_paired([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="no examples"):
        wilcoxon_paired([], [])


def test_bootstrap_mean_interval_brackets_the_mean() -> None:
    rng = np.random.default_rng(5)
    values = rng.uniform(size=256)
    low, high = bootstrap_mean_interval(values)
    assert low < values.mean() < high
    # the interval of a mean narrows like 1/sqrt(n): about 2 * 1.96 * sd / sqrt(n) wide
    assert high - low == pytest.approx(2 * 1.96 * values.std() / 16, rel=0.15)
    assert bootstrap_mean_interval(values) == (low, high)  # seeded


def test_bootstrap_mean_interval_edges() -> None:
    assert bootstrap_mean_interval([0.5] * 10) == (0.5, 0.5)
    low, high = bootstrap_mean_interval([])
    assert np.isnan(low) and np.isnan(high)
