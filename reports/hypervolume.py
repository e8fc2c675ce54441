"""Hypervolumes on plain numbers (no Optuna objects): how much of the objective space a set of
candidates covers, for the report's hypervolume figure and the search-efficiency bench. Fronts
and dominance are decisions (decisions/dominance.py)."""

from __future__ import annotations

from collections.abc import Sequence

from autotune.decisions.candidate import Candidate, Direction


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
