"""The report's figures besides the Pareto plot (reports/plot.py): hypervolume over trials,
parameter importances per objective, and the objectives against the searched knobs."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autotune.reports.hypervolume import objective_bounds, scaled_hypervolume  # noqa: E402
from autotune.reports.plot import COLORS, pareto_plot, save  # noqa: E402
from autotune.reports.results import RunResults  # noqa: E402
from autotune.reports.training import loss_curve_figure, trainings  # noqa: E402
from autotune.spaces import Choices, Range  # noqa: E402

# Knobs the parameter figure shows, in this order; other searched knobs fill in up to three.
KEY_KNOBS = ("lora_r", "learning_rate", "precision")


def write_figures(results: RunResults, folder: Path) -> dict[str, Path]:
    """Every figure of a run's report as a PNG in `folder`, by name; the loss curves only when
    a trial recorded one."""
    figures = {
        "pareto": pareto_plot(
            results.space, results.candidates, results.selection, folder / "pareto.png"
        ),
        "hypervolume": save(hypervolume_figure(results), folder / "hypervolume.png"),
        "importances": save(importance_figure(results), folder / "importances.png"),
        "parameters": save(parameter_figure(results), folder / "parameters.png"),
    }
    if any(t.train or t.eval for t in trainings(results)):
        figures["loss_curves"] = save(loss_curve_figure(results), folder / "loss_curves.png")
    return figures


def hypervolume_history(results: RunResults) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the feasible trials completed up to it) per completed trial,
    scaled to the box between the best and worst values the run reached."""
    candidates = sorted(results.candidates, key=lambda c: c.number)
    if not candidates:
        return []
    objectives = results.space.objectives
    bounds = objective_bounds(candidates, objectives)
    return [
        (c.number, scaled_hypervolume(candidates[: i + 1], objectives, bounds))
        for i, c in enumerate(candidates)
    ]


def hypervolume_figure(results: RunResults) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    history = hypervolume_history(results)
    if history:
        numbers, volumes = zip(*history, strict=True)
        ax.step(numbers, volumes, where="post", color=COLORS["feasible"], marker="o", ms=3)
    else:
        _empty(ax, "no completed trial")
    ax.set_xlabel("trial")
    ax.set_ylabel("hypervolume (fraction of the box)")
    ax.set_ylim(0, 1.02)
    names = " vs ".join(results.space.objectives)
    ax.set_title(f"Hypervolume of the feasible trials so far ({names})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def importances(results: RunResults) -> dict[str, dict[str, float]]:
    """Optuna's parameter importances (its default evaluator, PED-ANOVA) for each objective;
    an objective with too few completed trials is left out."""
    found: dict[str, dict[str, float]] = {}
    for index, name in enumerate(results.space.objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[name] = optuna.importance.get_param_importances(
                    results.study, target=lambda t, i=index: t.values[i]
                )
        except (RuntimeError, ValueError, ZeroDivisionError):
            continue
    return found


def importance_figure(results: RunResults) -> Figure:
    names = list(results.space.objectives)
    found = importances(results)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), dpi=110)
    for ax, name in zip(np.atleast_1d(axes), names, strict=True):
        values = found.get(name)
        if not values:
            _empty(ax, "too few completed trials")
        else:
            params = list(values)[::-1]
            ax.barh(params, [values[p] for p in params], color=COLORS["feasible"])
            ax.set_xlim(0, max(1.0, max(values.values())))
            ax.set_xlabel("importance")
        ax.set_title(f"{name} ({results.space.objectives[name]})")
    fig.suptitle("Parameter importances per objective (Optuna, PED-ANOVA)")
    fig.tight_layout()
    return fig


def shown_knobs(results: RunResults) -> list[str]:
    """The searched (not fixed) knobs the parameter figure plots."""
    searched = [k for k, v in results.space.search.items() if isinstance(v, Choices | Range)]
    ordered = [k for k in KEY_KNOBS if k in searched]
    return (ordered + [k for k in searched if k not in ordered])[:3]


def parameter_figure(results: RunResults) -> Figure:
    """One panel per objective and knob: each completed trial, feasible or not, and the pick."""
    objectives = list(results.space.objectives)
    knobs = shown_knobs(results)
    fig, axes = plt.subplots(
        len(objectives),
        max(len(knobs), 1),
        figsize=(3.6 * max(len(knobs), 1), 2.8 * len(objectives)),
        dpi=110,
        squeeze=False,
    )
    values = pd.DataFrame(
        [{"number": c.number, "feasible": c.feasible, **c.values} for c in results.candidates]
    )
    frame = results.completed
    chosen = results.selection.chosen.number if results.selection.chosen else None
    if not len(values) or not knobs:
        for ax in axes.flat:
            _empty(ax, "no completed trial" if not len(values) else "no searched knob")
        fig.tight_layout()
        return fig
    own = [c for c in [*objectives, "feasible"] if c in frame]
    data = frame.drop(columns=own).merge(values, on="number")
    rng = np.random.default_rng(0)
    for row, objective in enumerate(objectives):
        for col, knob in enumerate(knobs):
            ax = axes[row][col]
            x, ticks = _positions(data[knob], rng)
            for feasible, style in ((True, "feasible"), (False, "infeasible")):
                keep = (data["feasible"] == feasible).to_numpy()
                ax.scatter(
                    x[keep],
                    data[objective][keep],
                    s=18,
                    color=COLORS[style],
                    marker="o" if feasible else "x",
                    label=style,
                )
            pick = (data["number"] == chosen).to_numpy()
            if pick.any():
                ax.scatter(
                    x[pick],
                    data[objective][pick],
                    s=160,
                    marker="*",
                    color=COLORS["selected"],
                    zorder=5,
                    label="selected",
                )
            if ticks is not None:
                ax.set_xticks(range(len(ticks)), ticks)
            elif knob == "learning_rate" or _log_range(results, knob):
                ax.set_xscale("log")
            if row == len(objectives) - 1:
                ax.set_xlabel(knob)
            if col == 0:
                ax.set_ylabel(objective)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("Objectives against the searched knobs (completed trials)")
    fig.tight_layout()
    return fig


def _positions(column: pd.Series, rng: np.random.Generator) -> tuple[np.ndarray, list | None]:
    """x positions: numbers as they are; categories (precisions) as jittered indices."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and column.map(lambda v: not isinstance(v, str)).all():
        levels = sorted(numeric.unique())
        if len(levels) > 8 or not all(float(v).is_integer() for v in levels):
            return numeric.to_numpy(dtype=float), None
        index = {v: i for i, v in enumerate(levels)}
        labels = [str(int(v)) for v in levels]
        positions = numeric.map(index).to_numpy(dtype=float)
    else:
        labels = sorted(column.astype(str).unique())
        index = {v: i for i, v in enumerate(labels)}
        positions = column.astype(str).map(index).to_numpy(dtype=float)
    return positions + rng.uniform(-0.12, 0.12, len(positions)), labels


def _log_range(results: RunResults, knob: str) -> bool:
    spec = results.space.search.get(knob)
    return isinstance(spec, Range) and spec.log


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
