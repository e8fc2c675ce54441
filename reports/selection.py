"""Choosing a deployment candidate after the study, under constraints given then.

`--where 'decode_ms.p90<=5'` names a metric as a space does (latency metrics with an optional
statistic). A `--where` on a metric the study constrained replaces the study's bound (stricter or
looser); the study's other constraints still apply. The candidates are the completed trials; the
ranking is the feasible Pareto front of the study's objectives, best `prefer` first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from autotune.decisions.candidate import Candidate, straddled
from autotune.decisions.selection import Selection, closest_candidate, rank_front, select_confirmed
from autotune.errors import UsageError
from autotune.reports.results import RunResults
from autotune.spaces import (
    Constraint,
    check_metric,
    fmt,
    is_metric_column,
    metric_column,
    parse_constraint,
)

# METRIC then the space files' constraint grammar (spaces/schema.py: parse_constraint).
_WHERE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*((?:>=|<=).*)$")


def parse_where(text: str) -> Constraint:
    """'accuracy>=0.8' -> Constraint; UsageError naming what was expected."""
    match = _WHERE.match(text)
    try:
        if not match:
            raise ValueError
        constraint = parse_constraint(*match.groups())
    except ValueError:
        raise UsageError(
            f"bad --where {text!r}: expected METRIC>=NUMBER or METRIC<=NUMBER, "
            "e.g. 'accuracy>=0.8' or 'decode_ms.p90<=5'"
        ) from None
    if problem := check_metric(constraint.metric):
        raise UsageError(f"bad --where {text!r}: {problem}")
    return constraint


def constraints_for(results: RunResults, where: list[Constraint]) -> list[Constraint]:
    """The study's constraints, each replaced by a `--where` on the same metric column, plus the
    other `--where` constraints; metric names resolved to trials-table columns."""
    stat = results.space.latency.stat
    resolved = [
        Constraint(metric=metric_column(c.metric, stat), op=c.op, bound=c.bound) for c in where
    ]
    measured = set(results.completed.columns) if len(results.frame) else set()
    for constraint in resolved:
        if constraint.metric not in measured or results.completed[constraint.metric].isna().all():
            available = sorted(c for c in measured if is_metric_column(c))
            raise UsageError(
                f"--where {constraint}: {constraint.metric} was not measured in this run "
                f"(it has {', '.join(available) or 'no completed trial'})"
            )
    given = {c.metric for c in resolved}
    study = [
        Constraint(metric=metric_column(c.metric, stat), op=c.op, bound=c.bound)
        for c in results.space.parsed_constraints()
    ]
    return [c for c in study if c.metric not in given] + resolved


@dataclass(frozen=True)
class Choice:
    """The outcome: the selection (chosen, feasible front, reason), the front ranked best
    first, the constraints applied, and when nothing is feasible the closest candidate."""

    selection: Selection
    ranking: list[Candidate]
    constraints: list[Constraint]
    closest: Candidate | None

    def missing(self, results: RunResults) -> str:
        """What the closest candidate misses, with its figures, in one sentence."""
        if self.closest is None:
            return "no trial completed"
        row = results.row(self.closest.number)
        figures = ", ".join(f"{c.metric} {fmt(float(row[c.metric]))}" for c in self.constraints)
        missed = "; ".join(
            f"{c} (off by {fmt(c.violation(float(row[c.metric])))})"
            for c in self.constraints
            if c.violation(float(row[c.metric])) > 0
        )
        return f"the closest is trial {self.closest.number} ({figures}), which misses {missed}"


def judged(found: list[Candidate], constraints: list[Constraint]) -> list[Candidate]:
    """The candidates with their violations of `constraints` (those a figure is missing for, not
    measured in this trial, cannot be judged and are left out)."""
    kept = []
    for base in found:
        values = [float(base.figures.get(c.metric, math.nan)) for c in constraints]
        if any(math.isnan(v) for v in values):
            continue
        violations = {str(c): c.violation(v) for c, v in zip(constraints, values, strict=True)}
        kept.append(
            replace(base, violations=violations, straddles=straddled(base.figures, constraints))
        )
    return kept


def choose(results: RunResults, constraints: list[Constraint], prefer: str | None) -> Choice:
    """Rank the feasible Pareto candidates of a run under `constraints`."""
    space = results.space
    prefer = prefer or space.preferred_objective()
    if prefer not in space.objectives:
        raise UsageError(
            f"--prefer {prefer!r}: expected one of the objectives {list(space.objectives)}"
        )
    candidates = judged(results.candidates, constraints)
    timed_again = judged(results.confirmed, constraints)  # the confirmation round's figures
    selection = select_confirmed(candidates, timed_again, space.objectives, prefer)
    ranking = rank_front(selection.front, space.objectives, prefer)
    closest = closest_candidate(candidates) if selection.chosen is None else None
    return Choice(selection, ranking, constraints, closest)
