"""A noise-aware reading of bench/search_efficiency.py's searches: did a search find the grid's
front, up to what the measurements can tell apart?

The hypervolume check counts point estimates: a search that found every front point but one, and
found in its place a point tied with it (same accuracy by an exact McNemar test on the same eval
examples, same latency by a rank test on the repeats), scores below one that found the point
itself. Here a grid front point counts as found when a completed trial of the search is at least
as good on both objectives or cannot be told apart from it on either where it is worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from search_costs import STUDY, GridKey, TrialRow, grid_key

from autotune.evaluators.paired import mcnemar_exact, rank_test


@dataclass(frozen=True)
class Evidence:
    """One grid point's figures and what they rest on."""

    accuracy: float
    latency: float
    correct: str  # per-example correctness on the eval split, "0"/"1"
    samples: tuple[float, ...]  # the latency objective's repeats


def grid_evidence(grid: Path, latency: str) -> dict[GridKey, Evidence]:
    """Each completed grid point's evidence, from the grid study's `measured` attributes."""
    storage = f"sqlite:///{grid / 'study.db'}"
    study = optuna.load_study(study_name=STUDY, storage=storage)
    found = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        measured = trial.user_attrs["measured"]
        found[grid_key(trial.user_attrs.get("params") or trial.params)] = Evidence(
            accuracy=trial.values[0],
            latency=trial.values[1],
            correct=measured["correct"],
            samples=tuple(measured["latency_samples"][latency]),
        )
    return found


def ties_or_beats(found: Evidence, target: Evidence) -> bool:
    """Whether `found` is as good as `target` on both objectives, up to the noise."""
    accurate = (
        found.accuracy >= target.accuracy
        or not mcnemar_exact(found.correct, target.correct).distinguishable
    )
    slower = rank_test(found.samples, target.samples)
    fast = found.latency <= target.latency or not slower.distinguishable
    return accurate and fast


def front(evidence: dict[GridKey, Evidence]) -> list[GridKey]:
    """The grid's Pareto front on the point estimates (accuracy up, latency down)."""

    def dominated(key: GridKey) -> bool:
        a = evidence[key]
        return any(
            b.accuracy >= a.accuracy and b.latency <= a.latency and b != a
            for b in evidence.values()
        )

    return [key for key in evidence if not dominated(key)]


def front_found(rows: list[TrialRow], evidence: dict[GridKey, Evidence]) -> tuple[int, int]:
    """(grid front points a search's completed trials found or tied, front points)."""
    done = [evidence[r.key] for r in rows if r.state == "COMPLETE" and r.key in evidence]
    targets = front(evidence)
    return sum(any(ties_or_beats(f, evidence[t]) for f in done) for t in targets), len(targets)
