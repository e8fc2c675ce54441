"""Pareto front and selection, checked by hand and against Optuna's own front."""

from __future__ import annotations

import random

import optuna
from autotune.search.pareto import Candidate, dominates, pareto_front, select

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
