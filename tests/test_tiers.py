"""The noise-aware front and pick (decisions/selection.py) on hand-made candidates."""

from __future__ import annotations

import numpy as np

from autotune.decisions.candidate import Candidate, Evidence, straddled
from autotune.decisions.dominance import beats
from autotune.decisions.selection import select, select_confirmed, tiers
from autotune.spaces import Constraint

OBJECTIVES = {"accuracy": "maximize", "e2e_ms": "minimize"}


def correct(right: int, n: int = 200, offset: int = 0) -> str:
    """`right` ones among `n`, starting at `offset` (wrapping)."""
    bits = ["0"] * n
    for i in range(right):
        bits[(offset + i) % n] = "1"
    return "".join(bits)


def latency(centre: float, seed: int, n: int = 20) -> list[float]:
    return list(np.random.default_rng(seed).normal(centre, 0.02 * centre, n))


def candidate(number, right, e2e, size=100.0, offset=0, samples=None) -> Candidate:
    bits = correct(right, offset=offset)
    evidence = Evidence(correct=bits, samples={"e2e_ms": samples or latency(e2e, number)})
    return Candidate(
        number=number,
        values={"accuracy": right / 200, "e2e_ms": e2e},
        violations={},
        figures={"size_mb": size, "e2e_ms.p50": e2e},
        evidence=evidence,
    )


def test_a_difference_inside_the_noise_keeps_both_in_the_top_tier():
    # 142 against 140 right of 200, on overlapping examples: 2 discordant pairs, p = 0.5; the
    # more accurate one is also slower, so neither beats the other either way.
    a, b = candidate(0, 142, 1.00), candidate(1, 140, 0.99, size=50)
    assert not beats(a, b, OBJECTIVES) and not beats(b, a, OBJECTIVES)
    selection = select([a, b], OBJECTIVES, "accuracy")
    assert {c.number for c in selection.front} == {0, 1}
    assert {c.number for c in selection.ties} == {0, 1}
    assert selection.chosen.number == 1  # tied on accuracy: the smaller on disk
    assert selection.separation.examples_needed is not None  # how many would separate them


def test_a_point_estimate_front_would_drop_a_candidate_the_noise_cannot():
    # b is better on both point estimates, but by 1 example and 0.3% latency (inside the
    # repeats' spread): b does not beat a, so both stay in the top tier.
    a = candidate(0, 140, 1.000, samples=latency(1.0, 1))
    b = candidate(1, 141, 0.997, samples=latency(0.997, 2))
    assert not beats(b, a, OBJECTIVES)
    assert len(tiers([a, b], OBJECTIVES)) == 1


def test_a_distinguishable_difference_drops_the_loser_to_the_next_tier():
    # 170 against 120 right (50 discordant one way) and clearly faster.
    a, b = candidate(0, 170, 0.5), candidate(1, 120, 1.0)
    assert beats(a, b, OBJECTIVES)
    ranked = tiers([a, b], OBJECTIVES)
    assert [[c.number for c in t] for t in ranked] == [[0], [1]]
    selection = select([a, b], OBJECTIVES, "accuracy")
    assert selection.chosen.number == 0 and "distinguishably the best" in selection.reason


def test_latency_told_apart_by_the_repeats():
    # Same accuracy on the same examples; e2e 1.0 against 1.2 ms with 2% spread: a beats b.
    a, b = candidate(0, 150, 1.0), candidate(1, 150, 1.2)
    assert beats(a, b, OBJECTIVES)
    # With overlapping repeats the same point estimates are a tie.
    noisy = Evidence(correct=b.evidence.correct, samples={"e2e_ms": latency(1.0, 9)})
    b_noisy = Candidate(1, b.values, {}, b.figures, noisy)
    assert not beats(a, b_noisy, OBJECTIVES)


def test_without_evidence_any_difference_counts_as_a_point_estimate_front_would():
    a = Candidate(0, {"accuracy": 0.71, "e2e_ms": 1.0}, {})
    b = Candidate(1, {"accuracy": 0.70, "e2e_ms": 1.0}, {})
    assert beats(a, b, OBJECTIVES)


def test_constraints_met_inside_the_interval_are_marked():
    metrics = {"accuracy": 0.61, "accuracy.lo": 0.57, "accuracy.hi": 0.65, "e2e_ms.p50": 1.0}
    at_bound = Constraint(metric="accuracy", op=">=", bound=0.6)
    clear = Constraint(metric="accuracy", op=">=", bound=0.5)
    assert straddled(metrics, [at_bound, clear]) == (str(at_bound),)


def test_among_ties_of_one_size_the_faster_is_picked():
    # Same accuracy on the same examples, same size; 1.00 against 0.99 ms inside the noise.
    a = candidate(0, 150, 1.00, samples=latency(1.0, 3))
    b = candidate(1, 150, 0.99, samples=latency(0.99, 4))
    selection = select([a, b], OBJECTIVES, "accuracy")
    assert {c.number for c in selection.ties} == {0, 1}
    assert selection.chosen.number == 1


def test_with_a_confirmation_round_the_pick_comes_from_the_round_alone():
    # Search time: c looks fastest (1.0 ms, measured alone). The round timed a and b together,
    # where both ran slower (1.5 and 1.2 ms): c's figure is not comparable with theirs, and the
    # pick is b, distinguishably faster in the round at the same accuracy.
    a, b, c = candidate(0, 150, 1.1), candidate(1, 150, 1.1), candidate(2, 150, 1.0)
    round_ = [candidate(0, 150, 1.5), candidate(1, 150, 1.2)]
    selection = select_confirmed([a, b, c], round_, OBJECTIVES, "accuracy")
    assert selection.chosen.number == 1
    assert {x.number for x in selection.front} == {1}
    assert {x.number for tier in selection.tiers for x in tier} == {0, 1, 2}  # search time
    assert "confirmation round" in selection.reason
    # Without a round (or a round of one) the search-time rule decides.
    assert select_confirmed([a, b, c], round_[:1], OBJECTIVES, "accuracy").chosen.number == 2
