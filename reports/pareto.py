"""Pareto fronts and hypervolumes on plain numbers (no Optuna objects), and the candidate and
selection types the selection rule (reports/tiers.py) works on.

When no trial meets every constraint, the closest one is the one with the least total violation,
each constraint's violations scaled by their spread over the trials (so that units do not matter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
class Evidence:
    """What a candidate's figures rest on: per-example correctness ('0101...', eval order), the
    latency repeats by figure (`decode_ms` -> samples), 95% intervals by column."""

    correct: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """A completed trial as the selection sees it."""

    number: int
    values: dict[str, float]  # objective name -> value
    violations: dict[str, float]  # constraint -> violation (<= 0 means met)
    figures: dict[str, float] = field(default_factory=dict)  # every metric column
    evidence: Evidence = field(default_factory=Evidence)
    straddles: tuple[str, ...] = ()  # constraints met or missed inside the figure's interval

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())


@dataclass(frozen=True)
class Selection:
    """The chosen candidate, the feasible front it came from (the top tier), the reason in
    words; the tiers, the candidates tied with the best on the preferred objective, and whether
    the top two of those can be told apart (reports/tiers.py)."""

    chosen: Candidate | None
    front: list[Candidate]
    reason: str
    tiers: list[list[Candidate]] = field(default_factory=list)
    ties: list[Candidate] = field(default_factory=list)
    separation: Any = None  # tiers.Separation | None


def rank_front(
    front: Sequence[Candidate], objectives: dict[str, Direction], prefer: str
) -> list[Candidate]:
    """`front` best first: by `prefer`, then the other objectives in order, then trial number."""
    order = [prefer] + [n for n in objectives if n != prefer]

    def key(c: Candidate) -> tuple[tuple[float, ...], int]:
        signed = (c.values[n] if objectives[n] == "minimize" else -c.values[n] for n in order)
        return tuple(signed), c.number

    return sorted(front, key=key)


def closest_candidate(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate with the least total violation, each constraint scaled by its spread."""
    if not candidates:
        return None
    spread = {}
    for name in candidates[0].violations:
        values = [c.violations[name] for c in candidates]
        spread[name] = (max(values) - min(values)) or 1.0

    def missing(c: Candidate) -> float:
        return sum(max(v, 0) / spread[k] for k, v in c.violations.items())

    return min(candidates, key=lambda c: (missing(c), c.number))


def hypervolume(
    points: Sequence[Sequence[float]],
    directions: Sequence[Direction],
    reference: Sequence[float],
) -> float:
    """The volume dominated by `points` and bounded by `reference` (exact, by slicing; fine for
    the few hundred points of a study in two or three objectives)."""
    sign = [1.0 if d == "minimize" else -1.0 for d in directions]
    ref = [r * s for r, s in zip(reference, sign, strict=True)]
    flipped = [[x * s for x, s in zip(p, sign, strict=True)] for p in points]
    return _volume([p for p in flipped if all(x < r for x, r in zip(p, ref, strict=True))], ref)


def _volume(points: list[list[float]], reference: list[float]) -> float:
    """Hypervolume for minimisation of points that all lie below `reference`."""
    if not points:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in points)
    points = sorted(points, key=lambda p: p[-1])
    total = 0.0
    for i, point in enumerate(points):
        upper = points[i + 1][-1] if i + 1 < len(points) else reference[-1]
        if upper > point[-1]:
            total += (upper - point[-1]) * _volume(
                [p[:-1] for p in points[: i + 1]], reference[:-1]
            )
    return total


def scaled_hypervolume(
    candidates: Sequence[Candidate],
    objectives: dict[str, Direction],
    bounds: dict[str, tuple[float, float]],
) -> float:
    """Hypervolume of the feasible `candidates` as a fraction of the box from the best to 10%
    past the worst of each objective's `bounds` (best, worst): 0 (nothing) to 1 (ideal point)."""
    names = list(objectives)
    points = []
    for c in candidates:
        if c.feasible:
            point = []
            for n in names:
                best, worst = bounds[n]
                point.append((c.values[n] - best) / ((worst - best) or 1.0))
            points.append(point)
    reference = [1.1] * len(names)
    return hypervolume(points, ["minimize"] * len(names), reference) / 1.1 ** len(names)


def objective_bounds(
    candidates: Sequence[Candidate], objectives: dict[str, Direction]
) -> dict[str, tuple[float, float]]:
    """(best, worst) of each objective over `candidates`, feasible or not."""
    bounds = {}
    for name, direction in objectives.items():
        values = [c.values[name] for c in candidates]
        best, worst = (
            (min(values), max(values)) if direction == "minimize" else (max(values), min(values))
        )
        bounds[name] = (best, worst)
    return bounds
