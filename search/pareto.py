"""Pareto front and the selection rule, on plain numbers (no Optuna objects).

Selection rule: among the completed trials that meet every constraint, take the Pareto front of
the objectives, then the best candidate by the preferred objective (`select.prefer`, else the first
objective); ties go to the next objectives in the order the space lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Direction = str  # "maximize" | "minimize"


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[Direction]) -> bool:
    """True when `a` is at least as good as `b` everywhere and strictly better somewhere."""
    better = False
    for x, y, direction in zip(a, b, directions, strict=True):
        if direction == "minimize":
            x, y = -x, -y
        if x < y:
            return False
        if x > y:
            better = True
    return better


def pareto_front(points: Sequence[Sequence[float]], directions: Sequence[Direction]) -> list[int]:
    """Indices of the points no other point dominates (duplicates all stay on the front)."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i)
    ]


@dataclass(frozen=True)
class Candidate:
    """A completed trial as the selection sees it."""

    number: int
    values: dict[str, float]  # objective name -> value
    violations: dict[str, float]  # constraint -> violation (<= 0 means met)

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())


@dataclass(frozen=True)
class Selection:
    """The chosen candidate, the feasible front it came from, and the reason in words."""

    chosen: Candidate | None
    front: list[Candidate]
    reason: str


def select(
    candidates: Sequence[Candidate], objectives: dict[str, Direction], prefer: str
) -> Selection:
    """Apply the selection rule; `chosen` is None when no candidate meets the constraints."""
    names = list(objectives)
    directions = [objectives[n] for n in names]
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        closest = min(
            candidates, key=lambda c: sum(max(v, 0) for v in c.violations.values()), default=None
        )
        reason = "no completed trial meets every constraint"
        if closest is not None:
            missed = ", ".join(
                f"{k} (off by {v:.4g})" for k, v in closest.violations.items() if v > 0
            )
            reason += f"; the closest is trial {closest.number}, which misses {missed}"
        return Selection(None, [], reason)
    front = [
        feasible[i]
        for i in pareto_front([[c.values[n] for n in names] for c in feasible], directions)
    ]
    order = [prefer] + [n for n in names if n != prefer]

    def rank(c: Candidate) -> tuple[float, ...]:
        return tuple(c.values[n] if objectives[n] == "minimize" else -c.values[n] for n in order)

    chosen = min(front, key=lambda c: (rank(c), c.number))
    reason = (
        f"best {prefer} ({objectives[prefer]}) among the {len(front)} feasible Pareto-optimal "
        f"trials of {len(candidates)} completed ({len(feasible)} feasible)"
    )
    return Selection(chosen, front, reason)
