"""Scoring searches for bench/search_efficiency.py: each search's hypervolume fraction at shares
of the grid's cost and at numbers of completed trials, the tables printed, and the two checks."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pandas as pd

from autotune.reports.hypervolume import hypervolume
from bench.lib.search_costs import (
    DIRECTIONS,
    GroundTruth,
    Job,
    Point,
    TrialRow,
    read_trials,
    running_costs,
)
from bench.lib.search_ties import GridEvidence, front_found

BUDGETS = (Fraction(1, 6), Fraction(1, 3), Fraction(1, 2))  # shares of the grid's cost
TRIAL_COUNTS = (5, 9, 14)  # completed trials, 1/6, 1/3 and 1/2 of the grid: for information
HV_GOAL, GOAL_BUDGET = 0.95, Fraction(1, 3)  # check (a): 95% of the grid's HV within 1/3 its cost


@dataclass
class Scored:
    """One search: its trials, the running cost after each, and how the study ended."""

    job: Job
    rows: list[TrialRow]
    costs: list[float]
    wall_s: float
    stopped: str

    @property
    def total_cost(self) -> float:
        return self.costs[-1] if self.costs else 0.0

    def within(self, cost: float) -> list[TrialRow]:
        """The trials done before the running cost passed `cost`."""
        return self.rows[: bisect.bisect_right(self.costs, cost)]

    def first_completed(self, count: int) -> list[TrialRow]:
        """The trials up to the `count`-th completed one (all when fewer completed)."""
        completed = [i for i, row in enumerate(self.rows) if row.state == "COMPLETE"]
        return self.rows if len(completed) < count else self.rows[: completed[count - 1] + 1]


def score(root: Path, job: Job, record: dict[str, Any], truth: GroundTruth) -> Scored:
    rows = read_trials(root / "runs" / job.name)
    costs = running_costs(rows, truth)
    return Scored(job, rows, costs, record["seconds"], record["stopped"])


def hv_fraction(rows: list[TrialRow], reference: Point, grid_hv: float) -> float:
    points = [r.point for r in rows if r.point is not None]
    return hypervolume(points, DIRECTIONS, reference) / grid_hv


def completed_trainings(rows: list[TrialRow]) -> int:
    return len({r.adapter for r in rows if r.state == "COMPLETE"})


# --------------------------------------------------------------------------- report


def budget_table(
    scored: list[Scored],
    truth: GroundTruth,
    reference: Point,
    grid_hv: float,
    evidence: GridEvidence,
) -> pd.DataFrame:
    """One row per search and cost budget: what it held when the budget was spent."""
    records = []
    for search, budget in itertools.product(scored, BUDGETS):
        limit = float(budget) * truth.cost
        rows = search.within(limit)
        spent = search.costs[len(rows) - 1] if rows else 0.0
        tied, points = front_found(rows, evidence)
        records.append(
            {
                "strategy": search.job.strategy,
                "budget": str(budget),
                "seed": search.job.seed,
                "hv_frac": round(hv_fraction(rows, reference, grid_hv), 4),
                "front_tied": f"{tied}/{points}",  # grid front points found or tied (noise)
                "cost_s": round(spent, 1),
                "cost_frac": round(spent / truth.cost, 3),
                "trials": len(rows),
                "completed": sum(r.state == "COMPLETE" for r in rows),
                "trainings": completed_trainings(rows),
                "pruned": sum(r.state == "PRUNED" for r in rows),
                "repruned": sum(r.repruned for r in rows),
                "ended": "yes" if search.total_cost < limit else "",
            }
        )
    return pd.DataFrame(records)


def search_table(scored: list[Scored], truth: GroundTruth) -> pd.DataFrame:
    """One row per search: the whole study."""
    return pd.DataFrame(
        [
            {
                "strategy": s.job.strategy,
                "seed": s.job.seed,
                "trials": len(s.rows),
                "completed": sum(r.state == "COMPLETE" for r in s.rows),
                "distinct": len({r.key for r in s.rows if r.state == "COMPLETE"}),
                "trainings": completed_trainings(s.rows),
                "pruned": sum(r.state == "PRUNED" for r in s.rows),
                "repruned": sum(r.repruned for r in s.rows),
                "failed": sum(r.state == "FAIL" for r in s.rows),
                "cost_frac": round(s.total_cost / truth.cost, 3),
                "wall_s": round(s.wall_s, 1),
                "stopped": s.stopped,
            }
            for s in scored
        ]
    )


def summary(table: pd.DataFrame) -> pd.DataFrame:
    grouped = table.groupby(["strategy", "budget"], sort=False)
    return grouped.agg(
        hv_mean=("hv_frac", "mean"),
        hv_min=("hv_frac", "min"),
        cost_frac_mean=("cost_frac", "mean"),
        trials=("trials", "mean"),
        trainings=("trainings", "mean"),
        pruned=("pruned", "mean"),
        ended=("ended", lambda e: int((e == "yes").sum())),
    ).round(3)


def trial_count_table(scored: list[Scored], reference: Point, grid_hv: float) -> pd.DataFrame:
    """HV fraction of each search's first 5, 9 and 14 completed trials, whatever they cost."""
    return pd.DataFrame(
        [
            {
                "strategy": s.job.strategy,
                "budget": count,
                "seed": s.job.seed,
                "hv_frac": hv_fraction(s.first_completed(count), reference, grid_hv),
            }
            for s, count in itertools.product(scored, TRIAL_COUNTS)
        ]
    )


def at_budget(table: pd.DataFrame, strategy: str, budget: str | int) -> pd.DataFrame:
    return table[(table.strategy == strategy) & (table.budget == budget)].set_index("seed")


def compare(mine: pd.DataFrame, theirs: pd.DataFrame, label: str) -> bool:
    """Seed by seed HV fractions of two sets of runs; True when the first is >= on most seeds."""
    seeds = mine.index.intersection(theirs.index)
    diff = mine.loc[seeds, "hv_frac"] - theirs.loc[seeds, "hv_frac"]
    better, ties, worse = int((diff > 0).sum()), int((diff == 0).sum()), int((diff < 0).sum())
    print(
        f"    {label}: better {better}, ties {ties}, worse {worse} (mean "
        f"{mine.loc[seeds, 'hv_frac'].mean():.3f} vs {theirs.loc[seeds, 'hv_frac'].mean():.3f})"
    )
    return len(seeds) > 0 and better + ties > len(seeds) / 2


def check_a(table: pd.DataFrame, seeds_needed: int = 4, strategy: str = "default") -> bool:
    """A strategy's HV within GOAL_BUDGET of the grid's cost, seed by seed: at least
    `seeds_needed` seeds reach HV_GOAL."""
    runs = at_budget(table, strategy, str(GOAL_BUDGET))
    reached = int((runs.hv_frac >= HV_GOAL).sum())
    passed = reached >= min(seeds_needed, len(runs))
    print(
        f"(a) {strategy} reaches >= {HV_GOAL:.0%} of the grid's HV within {GOAL_BUDGET} of the "
        f"grid's cost on {reached} of {len(runs)} seeds (HV fractions "
        f"{', '.join(f'{v:.3f}' for v in runs.hv_frac)}; mean {runs.hv_frac.mean():.3f}); "
        f"at least {seeds_needed}: {'PASS' if passed else 'FAIL'}"
    )
    return passed


def check_a_ties(table: pd.DataFrame, strategy: str = "default") -> int:
    """For information: on how many seeds `strategy` found or tied every grid front point
    within GOAL_BUDGET of the grid's cost (bench/lib/search_ties.py)."""
    runs = at_budget(table, strategy, str(GOAL_BUDGET))
    whole = sum(found.split("/")[0] == found.split("/")[1] for found in runs.front_tied)
    print(
        f"    up to the noise: {strategy} found or tied every grid front point within "
        f"{GOAL_BUDGET} of the grid's cost on {whole} of {len(runs)} seeds "
        f"({', '.join(runs.front_tied)})"
    )
    return whole


def check_b(
    table: pd.DataFrame, counts: pd.DataFrame, other: str = "median", strategy: str = "default"
) -> bool | None:
    """A strategy's mean HV fraction above `other`'s at 1/6 and 1/3 of the grid's cost, with
    the seed-by-seed comparison; None when `other` did not run."""
    if other not in set(table.strategy):
        print(f"(b) skipped: {other} did not run")
        return None
    print(f"(b) {strategy} vs {other} at equal cost (share of the grid's), HV fraction by seed:")
    passed = True
    for budget in map(str, BUDGETS):
        mine, theirs = at_budget(table, strategy, budget), at_budget(table, other, budget)
        compare(mine, theirs, f"cost {budget}")
        if budget in ("1/6", "1/3"):
            passed &= bool(mine.hv_frac.mean() > theirs.hv_frac.mean())
    verdict = "PASS" if passed else "FAIL"
    print(f"    {strategy}'s mean above {other}'s at 1/6 and 1/3: {verdict}")
    print("    for information, at equal completed trials (whatever they cost):")
    for count in TRIAL_COUNTS:
        mine, theirs = at_budget(counts, strategy, count), at_budget(counts, other, count)
        compare(mine, theirs, f"{count} trials")
    return passed


def checks(table: pd.DataFrame, counts: pd.DataFrame, strategy: str) -> dict[str, Any]:
    """Checks (a), (a) up to the noise and (b) of `strategy`, printed; their outcomes."""
    return {
        "a": check_a(table, strategy=strategy),
        "a_seeds_front_tied": check_a_ties(table, strategy=strategy),
        "b": check_b(table, counts, strategy=strategy),
    }
