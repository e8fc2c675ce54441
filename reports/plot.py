"""The Pareto plot: every completed trial, the feasible front, the constraints and the pick.

Two objectives give one panel; three or more give one panel per pair of objectives.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autotune.decisions.candidate import Candidate  # noqa: E402
from autotune.decisions.selection import Selection  # noqa: E402
from autotune.spaces import Space, metric_column  # noqa: E402

COLORS = {
    "infeasible": "#999999",
    "feasible": "#4C72B0",
    "front": "#DD8452",
    "selected": "#C44E52",
    "constraint": "#55A868",
}


def pareto_figure(space: Space, candidates: list[Candidate], selection: Selection) -> Figure:
    """The figure: one panel per pair of objectives (or the only one against trial number)."""
    names = list(space.objectives)
    pairs = [(b, a) for a, b in combinations(names, 2)] or [(None, names[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(7 * len(pairs) ** 0.8, 4.8), dpi=110)
    for ax, (x_name, y_name) in zip(_flat(axes), pairs, strict=True):
        _panel(ax, space, candidates, selection, x_name, y_name, connect=len(names) == 2)
    fig.suptitle(f"{space.name}: {len(candidates)} completed trials")
    fig.tight_layout()
    return fig


def pareto_plot(
    space: Space, candidates: list[Candidate], selection: Selection, path: Path
) -> Path:
    """pareto_figure saved as a PNG."""
    return save(pareto_figure(space, candidates, selection), path)


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path)
    plt.close(fig)
    return path


def _flat(axes) -> list[Axes]:
    return list(axes.flat) if hasattr(axes, "flat") else [axes]


def _panel(
    ax: Axes,
    space: Space,
    candidates: list[Candidate],
    selection: Selection,
    x_name: str | None,
    y_name: str,
    connect: bool,
) -> None:
    def xy(c: Candidate) -> tuple[float, float]:
        return (c.values[x_name] if x_name else c.number), c.values[y_name]

    feasible = [c for c in candidates if c.feasible]
    infeasible = [c for c in candidates if not c.feasible]
    if infeasible:
        ax.scatter(
            *zip(*map(xy, infeasible), strict=True),
            marker="x",
            color=COLORS["infeasible"],
            label="infeasible",
        )
    if feasible:
        ax.scatter(
            *zip(*map(xy, feasible), strict=True), color=COLORS["feasible"], label="feasible"
        )
    for c in candidates:  # each figure's 95% interval, where the measurement gave one
        x, y = xy(c)
        xerr, yerr = _error(c, x_name, x), _error(c, y_name, y)
        if xerr is not None or yerr is not None:
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="#888888", lw=0.7)
    if selection.front:
        front = sorted(map(xy, selection.front))
        ax.plot(
            *zip(*front, strict=True),
            color=COLORS["front"],
            marker="o",
            linestyle="-" if connect else "none",
            label="top tier (noise-aware front)",
        )
    if selection.chosen is not None:
        ax.scatter(
            *xy(selection.chosen),
            s=260,
            marker="*",
            color=COLORS["selected"],
            zorder=5,
            label=f"selected (trial {selection.chosen.number})",
        )
    # A constraint line near the data widens the axes to show it; one far off is listed, not drawn.
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    stat = space.latency.stat
    for constraint in space.parsed_constraints():
        column = metric_column(constraint.metric, stat)
        if column == metric_column(y_name, stat):
            ax.axhline(
                constraint.bound, color=COLORS["constraint"], linestyle="--", label=str(constraint)
            )
            ylim = _widen(ylim, constraint.bound)
        elif x_name and column == metric_column(x_name, stat):
            ax.axvline(
                constraint.bound, color=COLORS["constraint"], linestyle=":", label=str(constraint)
            )
            xlim = _widen(xlim, constraint.bound)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(f"{x_name} ({space.objectives[x_name]})" if x_name else "trial")
    ax.set_ylabel(f"{y_name} ({space.objectives[y_name]})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _error(c: Candidate, name: str | None, value: float) -> list[list[float]] | None:
    """Matplotlib's asymmetric error for `value`, from the candidate's 95% interval of `name`."""
    interval = c.evidence.intervals.get(name) if name else None
    if interval is None:
        return None
    return [[max(value - interval[0], 0.0)], [max(interval[1] - value, 0.0)]]


def _widen(limits: tuple[float, float], value: float, reach: float = 0.5) -> tuple[float, float]:
    """`limits` stretched to show `value` if it lies within `reach` spans of them."""
    low, high = limits
    span = high - low
    if low - reach * span <= value <= high + reach * span:
        margin = 0.05 * span
        return min(low, value - margin), max(high, value + margin)
    return limits
