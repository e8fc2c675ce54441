"""A noise-aware reading of bench/search_efficiency.py's searches: did a search find the grid's
front, up to what the measurements can tell apart?

The hypervolume check counts point estimates: a search that found every front point but one, and
found in its place a point tied with it, scores below one that found the point itself. Here a
grid front point counts as found when a completed trial of the search matches it: the front point
is distinguishably better on neither objective, by the one rule of decisions/dominance.py
(`matches`: an exact McNemar test on the same eval examples for accuracy; for latency a rank test
on the repeats and a shift of at least 3% of the slower median).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna

from autotune.decisions.candidate import Candidate, Direction, Evidence
from autotune.decisions.dominance import matches, pareto_front, values_of
from autotune.spaces import split_metric
from bench.lib.search_costs import STUDY, GridKey, TrialRow, grid_key


@dataclass(frozen=True)
class GridEvidence:
    """The grid's completed points as the decision rules see them, under its two objectives."""

    objectives: dict[str, Direction]  # accuracy up, the space's latency objective down
    points: dict[GridKey, Candidate]


def grid_evidence(grid: Path, latency: str) -> GridEvidence:
    """Each completed grid point's figures and evidence, from the grid study's `measured`
    attributes (per-example correctness, the latency objective's repeats)."""
    storage = f"sqlite:///{grid / 'study.db'}"
    study = optuna.load_study(study_name=STUDY, storage=storage)
    figure, _ = split_metric(latency)
    points = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        measured = trial.user_attrs["measured"]
        points[grid_key(trial.user_attrs.get("params") or trial.params)] = Candidate(
            trial.number,
            values={"accuracy": trial.values[0], latency: trial.values[1]},
            violations={},
            evidence=Evidence(
                correct=measured["correct"],
                samples={figure: list(measured["latency_samples"][figure])},
            ),
        )
    return GridEvidence({"accuracy": "maximize", latency: "minimize"}, points)


def front(evidence: GridEvidence) -> list[GridKey]:
    """The grid's Pareto front on the point estimates."""
    keys = list(evidence.points)
    values = [values_of(evidence.points[key], evidence.objectives) for key in keys]
    return [keys[i] for i in pareto_front(values, list(evidence.objectives.values()))]


def front_found(rows: list[TrialRow], evidence: GridEvidence) -> tuple[int, int]:
    """(grid front points a search's completed trials found or tied, front points)."""
    points, objectives = evidence.points, evidence.objectives
    done = [points[r.key] for r in rows if r.state == "COMPLETE" and r.key in points]
    targets = front(evidence)
    tied = sum(any(matches(f, points[t], objectives) for f in done) for t in targets)
    return tied, len(targets)
