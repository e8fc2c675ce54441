"""Pareto front and selection, checked by hand and against Optuna's own front."""

from __future__ import annotations

import random

import optuna
import pytest

from autotune.decisions.candidate import Candidate
from autotune.decisions.dominance import dominates, pareto_front
from autotune.decisions.selection import closest_candidate, rank_front, select
from autotune.reports.hypervolume import hypervolume, objective_bounds, scaled_hypervolume

MAX_MIN = ["maximize", "minimize"]


def test_dominates():
    assert dominates([0.9, 1.0], [0.8, 2.0], MAX_MIN)
    assert not dominates([0.9, 3.0], [0.8, 2.0], MAX_MIN)
    assert not dominates([0.9, 1.0], [0.9, 1.0], MAX_MIN)


def test_front_by_hand():
    points = [[0.9, 5.0], [0.8, 2.0], [0.7, 3.0], [0.95, 9.0], [0.8, 2.0]]
    assert pareto_front(points, MAX_MIN) == [0, 1, 3, 4]


def test_front_matches_optuna_best_trials():
    rng = random.Random(3)
    study = optuna.create_study(directions=MAX_MIN)
    points = [[round(rng.random(), 2), round(rng.random() * 10, 1)] for _ in range(60)]
    for values in points:
        study.add_trial(optuna.trial.create_trial(values=values, params={}, distributions={}))
    ours = {tuple(points[i]) for i in pareto_front(points, MAX_MIN)}
    theirs = {tuple(t.values) for t in study.best_trials}
    assert ours == theirs


def candidate(number, accuracy, latency, accuracy_bound=0.6):
    return Candidate(
        number,
        {"accuracy": accuracy, "e2e_ms": latency},
        {"accuracy >= 0.6": accuracy_bound - accuracy},
    )


OBJECTIVES = {"accuracy": "maximize", "e2e_ms": "minimize"}


def test_select_prefers_the_named_objective_among_feasible_front():
    candidates = [
        candidate(0, 0.70, 3.0),
        candidate(1, 0.65, 1.0),
        candidate(2, 0.50, 0.5),
        candidate(3, 0.64, 2.0),
    ]
    fastest = select(candidates, OBJECTIVES, "e2e_ms")
    assert fastest.chosen.number == 1  # trial 2 is faster but infeasible
    assert {c.number for c in fastest.front} == {0, 1}
    best = select(candidates, OBJECTIVES, "accuracy")
    assert best.chosen.number == 0


def test_select_breaks_ties_with_the_next_objective():
    candidates = [candidate(0, 0.70, 3.0), candidate(1, 0.70, 2.0)]
    assert select(candidates, OBJECTIVES, "accuracy").chosen.number == 1


def test_select_without_feasible_names_the_closest():
    selection = select([candidate(0, 0.40, 1.0), candidate(1, 0.55, 2.0)], OBJECTIVES, "accuracy")
    assert selection.chosen is None and selection.front == []
    assert "trial 1" in selection.reason and "accuracy >= 0.6" in selection.reason


def test_select_closest_weighs_constraints_by_their_spread():
    # Trial 0 misses the latency bound by 1 ms (a fifth of the spread); trial 1 misses the
    # accuracy bound by 0.05 (all of its spread): trial 0 is closer, though 1 > 0.05.
    def two(number, accuracy, latency):
        return Candidate(
            number,
            {"accuracy": accuracy, "e2e_ms": latency},
            {"accuracy >= 0.6": 0.6 - accuracy, "e2e_ms <= 5": latency - 5},
        )

    candidates = [two(0, 0.65, 6.0), two(1, 0.55, 1.0), two(2, 0.60, 10.0)]
    assert closest_candidate(candidates).number == 0
    assert "the closest is trial 0" in select(candidates, OBJECTIVES, "accuracy").reason


def test_rank_front_orders_by_the_preferred_objective_then_the_others():
    front = [candidate(0, 0.70, 3.0), candidate(1, 0.65, 1.0), candidate(2, 0.70, 2.0)]
    assert [c.number for c in rank_front(front, OBJECTIVES, "accuracy")] == [2, 0, 1]
    assert [c.number for c in rank_front(front, OBJECTIVES, "e2e_ms")] == [1, 2, 0]


def test_hypervolume_by_hand():
    # Minimising both: points (1, 3), (2, 2), (3, 1) under reference (4, 4): 3 + 2 + 1 = 6.
    assert hypervolume([[1, 3], [2, 2], [3, 1]], ["minimize"] * 2, [4, 4]) == 6
    # Maximising accuracy, minimising latency: the same shape mirrored.
    assert hypervolume([[3, 3], [2, 2], [1, 1]], MAX_MIN, [0, 4]) == 6
    # A dominated point and a point beyond the reference add nothing.
    assert hypervolume([[1, 3], [2, 2], [3, 1], [3, 3], [5, 0]], ["minimize"] * 2, [4, 4]) == 6
    # Three objectives: one point is a box; two overlapping boxes by inclusion-exclusion.
    assert hypervolume([[1, 1, 1]], ["minimize"] * 3, [2, 3, 4]) == 1 * 2 * 3
    two = hypervolume([[0, 1, 1], [1, 0, 1]], ["minimize"] * 3, [2, 2, 2])
    assert two == 2 * 1 * 1 + 1 * 2 * 1 - 1 * 1 * 1


def test_hypervolume_matches_optuna():
    import numpy as np
    from optuna._hypervolume import compute_hypervolume

    rng = random.Random(5)
    points = [[rng.random(), rng.random(), rng.random()] for _ in range(30)]
    theirs = compute_hypervolume(np.array(points), np.array([1.1, 1.1, 1.1]))
    assert hypervolume(points, ["minimize"] * 3, [1.1, 1.1, 1.1]) == pytest.approx(theirs)


def test_scaled_hypervolume_is_a_fraction_of_the_box():
    candidates = [candidate(0, 0.7, 1.0), candidate(1, 0.5, 3.0), candidate(2, 0.65, 2.0)]
    bounds = objective_bounds(candidates, OBJECTIVES)
    assert bounds == {"accuracy": (0.7, 0.5), "e2e_ms": (1.0, 3.0)}
    # Trial 0 is best at both: the whole box. Trial 1 (infeasible) adds nothing.
    assert scaled_hypervolume(candidates, OBJECTIVES, bounds) == pytest.approx(1.0)
    assert scaled_hypervolume(candidates[1:], OBJECTIVES, bounds) == pytest.approx(
        (1.1 - 0.25) * (1.1 - 0.5) / 1.21
    )
