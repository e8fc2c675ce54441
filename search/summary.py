"""The summary table printed at the end of a study."""

from __future__ import annotations

from pathlib import Path

import optuna
from autotune.reports.outputs import RunOutputs
from autotune.search.space import Space
from autotune.search.study import metric
from rich.console import Console
from rich.table import Table


def print_summary(study: optuna.Study, space: Space, outputs: RunOutputs, out: Path) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=200)
    front = {c.number for c in outputs.selection.front}
    chosen = outputs.selection.chosen.number if outputs.selection.chosen else None
    table = Table(title=f"{space.name}: trials")
    table.add_column("trial", justify="right")
    table.add_column("state")
    for name in space.search:
        table.add_column(name)
    for name in space.objectives:
        table.add_column(name, justify="right")
    table.add_column("")
    for trial in study.get_trials(deepcopy=False):
        params = trial.user_attrs.get("params", trial.params)
        metrics = trial.user_attrs.get("metrics", {})
        values = [f"{metric(metrics, n, space):.4g}" if metrics else "" for n in space.objectives]
        mark = "selected" if trial.number == chosen else ("front" if trial.number in front else "")
        table.add_row(
            str(trial.number),
            trial.state.name.lower(),
            *[_fmt(params.get(n)) for n in space.search],
            *values,
            mark,
        )
    console.print(table)
    console.print(f"selection: {outputs.selection.reason}")
    if outputs.selected:
        console.print(f"selected model: {outputs.selected}")
    console.print(
        f"report: {outputs.report_md}  table: {outputs.trials_csv}  plot: {outputs.pareto_png}"
    )


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("" if value is None else str(value))
