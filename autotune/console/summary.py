"""The summary table printed at the end of a study."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from autotune.reports.outputs import RunOutputs
from autotune.reports.quality import collapse_lines, collapsed_trials, difference_text, headline
from autotune.search.record import State
from autotune.spaces import Space
from autotune.spaces.metrics import fmt


def print_summary(space: Space, outputs: RunOutputs) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=200)
    front = {c.number for c in outputs.selection.front}
    chosen = outputs.selection.chosen.number if outputs.selection.chosen else None
    collapsed = collapsed_trials(outputs.records, outputs.selection)
    legend = "* selected, + feasible Pareto front" + (", ! collapsed" if collapsed else "")
    table = Table(title=f"{space.name}: trials ({legend})")
    table.add_column("trial", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for name in space.search:
        table.add_column(SHORT.get(name, name), no_wrap=True)
    for name in space.objectives:
        table.add_column(name, justify="right", no_wrap=True)
    records = outputs.records
    waiting = [r for r in records if r.state == State.WAITING.name]
    for record in records:
        if record.state == State.WAITING.name:
            continue
        metrics = record.metrics
        values = [figure(space, metrics, name) for name in space.objectives]
        mark = "*" if record.number == chosen else ("+" if record.number in front else "")
        mark += "!" if record.number in collapsed else ""
        state = STATES.get(record.state, record.state.lower())
        params_shown = [fmt(record.params.get(n), 3, exponent_below=1e-2) for n in space.search]
        table.add_row(f"{record.number}{mark}", state, *params_shown, *values)
    console.print(table)
    if waiting:
        console.print(
            f"{len(waiting)} queued trials (siblings or retries) were left for a later run: "
            "a larger --trials with the same --out runs them first"
        )
    console.print(f"selection: {outputs.selection.reason}")
    for line in collapse_lines(outputs.records, outputs.selection):
        console.print(line)
    if outputs.reference is not None:
        console.print(against_base(space, outputs))
    if outputs.selected:
        console.print(f"selected model: {outputs.selected}")
    console.print(f"report: {outputs.report_html} ({outputs.report_md.name})")
    console.print(
        f"tables: {outputs.trials_csv} ({outputs.trials_parquet.name})  plot: {outputs.pareto_png}"
    )


def figure(space: Space, metrics: dict[str, float], name: str) -> str:
    """A trial's figure for the table: blank when it has none; a trial stopped by racing
    evaluation has latency but only a partial accuracy, shown in parentheses."""
    column = space.column(name)
    if column in metrics:
        return fmt(metrics[column], 3)
    partial = metrics.get(f"partial_{name}")
    return f"({fmt(partial, 3)})" if partial is not None else ""


def against_base(space: Space, outputs: RunOutputs) -> str:
    """The untrained base's figures, and the selected trial's gain over it."""
    base = outputs.reference
    assert base is not None
    shown = ", ".join(f"{n} {fmt(base.metrics.get(space.column(n)), 3)}" for n in space.objectives)
    line = f"untrained base ({base.params.get('precision')}, never selected): {shown}"
    chosen = outputs.selection.chosen
    name = headline(space)
    if chosen is not None and name in base.metrics:
        mine = outputs.records[chosen.number].metrics
        if name in mine:
            gain = difference_text(name, mine[name], base.metrics[name])
            line += f"; the selected trial {chosen.number} against it: {gain}"
    return line


# Column headers short enough for an 80-column terminal.
SHORT = {
    "lora_r": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "learning_rate": "lr",
    "precision": "precision",
    "int4_block_size": "block",
    "int4_accuracy_level": "acc.lvl",
}
STATES = {"COMPLETE": "done", "FAIL": "failed", "PRUNED": "pruned", "RUNNING": "running"}
