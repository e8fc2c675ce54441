"""The Pareto plot: every completed trial, the feasible front, the constraints and the pick."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from autotune.search.pareto import Candidate, Selection  # noqa: E402
from autotune.search.space import Space, split_metric  # noqa: E402


def pareto_plot(
    space: Space, candidates: list[Candidate], selection: Selection, path: Path
) -> Path:
    """Scatter of the first two objectives (or the only one against trial number)."""
    names = list(space.objectives)
    x_name = names[1] if len(names) > 1 else None
    y_name = names[0]

    def xy(c: Candidate) -> tuple[float, float]:
        return (c.values[x_name] if x_name else c.number), c.values[y_name]

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=110)
    feasible = [c for c in candidates if c.feasible]
    infeasible = [c for c in candidates if not c.feasible]
    if infeasible:
        ax.scatter(
            *zip(*map(xy, infeasible), strict=True), marker="x", color="#999999", label="infeasible"
        )
    if feasible:
        ax.scatter(*zip(*map(xy, feasible), strict=True), color="#4C72B0", label="feasible")
    if selection.front:
        front = sorted(map(xy, selection.front))
        ax.plot(
            *zip(*front, strict=True), color="#DD8452", marker="o", label="feasible Pareto front"
        )
    if selection.chosen is not None:
        ax.scatter(
            *xy(selection.chosen), s=260, marker="*", color="#C44E52", zorder=5, label="selected"
        )
    # A constraint line near the data widens the axes to show it; one far off is listed, not drawn.
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    for constraint in space.parsed_constraints():
        if split_metric(constraint.metric)[0] == split_metric(y_name)[0]:
            ax.axhline(constraint.bound, color="#55A868", linestyle="--", label=str(constraint))
            ylim = _widen(ylim, constraint.bound)
        elif x_name and split_metric(constraint.metric)[0] == split_metric(x_name)[0]:
            ax.axvline(constraint.bound, color="#55A868", linestyle=":", label=str(constraint))
            xlim = _widen(xlim, constraint.bound)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(f"{x_name} ({space.objectives[x_name]})" if x_name else "trial")
    ax.set_ylabel(f"{y_name} ({space.objectives[y_name]})")
    ax.set_title(f"{space.name}: {len(candidates)} completed trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _widen(limits: tuple[float, float], value: float, reach: float = 0.5) -> tuple[float, float]:
    """`limits` stretched to show `value` if it lies within `reach` spans of them."""
    low, high = limits
    span = high - low
    if low - reach * span <= value <= high + reach * span:
        margin = 0.05 * span
        return min(low, value - margin), max(high, value + margin)
    return limits
