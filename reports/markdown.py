"""report.md: the question, the answer (the selected candidate and why), and every trial."""

from __future__ import annotations

import pandas as pd
from autotune.evaluators.environment import describe
from autotune.search.pareto import Selection
from autotune.search.space import Space, is_metric_column, split_metric


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (floats to 4 significant digits)."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def environment(target: str) -> str:
    """One line: CPU, cores, GPUs and package versions (as measurements record them)."""
    machine = describe(target)
    parts = [f"{machine['cpu']}, {machine['usable_cores']} cores"]
    parts += [f"GPU {gpu['name']}" for gpu in machine["gpus"]]  # type: ignore[union-attr]
    parts += [f"{k} {v}" for k, v in machine["versions"].items()]  # type: ignore[union-attr]
    return ", ".join(parts)


def report_markdown(
    space: Space, target: str, frame: pd.DataFrame, selection: Selection, wall_seconds: float | None
) -> str:
    """The whole report as Markdown text."""
    objective_cols = [
        c for c in frame.columns if is_metric_column(c) and split_metric(c)[1] in (None, "p50")
    ]
    param_cols = [c for c in frame.columns if c in space.search]
    completed = frame[frame["state"] == "COMPLETE"]
    stage_cols = [c for c in frame.columns if c.startswith("seconds.")]
    lines = [f"# autotune report: {space.name} on {target}", ""]
    lines += ["## The question", ""]
    lines.append(f"- objectives: {', '.join(f'{k} ({v})' for k, v in space.objectives.items())}")
    lines.append(f"- constraints: {', '.join(map(str, space.parsed_constraints())) or 'none'}")
    lines.append(
        f"- budget: {space.budget.trials} completed trials; states: "
        + ", ".join(f"{k} {v}" for k, v in frame["state"].value_counts().items())
    )
    if wall_seconds is not None:
        lines.append(f"- wall time of this run: {wall_seconds:.0f} s")
    if stage_cols:
        totals = ", ".join(
            f"{c.removeprefix('seconds.')} {frame[c].sum():.1f} s" for c in stage_cols
        )
        lines.append(f"- time per stage, all trials: {totals}")
    lines.append(f"- environment: {environment(target)}")
    lines += ["", "## The answer", ""]
    if selection.chosen is None:
        lines.append(f"No candidate selected: {selection.reason}.")
    else:
        chosen = frame[frame["number"] == selection.chosen.number]
        lines.append(
            f"Selected **trial {selection.chosen.number}**: {selection.reason}. "
            "Its model is in `selected/`."
        )
        lines += ["", markdown_table(chosen[["number", *param_cols, *objective_cols]])]
    lines += ["", "![Pareto front](pareto.png)", "", "## Feasible Pareto front", ""]
    front = frame[frame["number"].isin([c.number for c in selection.front])]
    lines.append(
        markdown_table(front[["number", *param_cols, *objective_cols]]) if len(front) else "empty"
    )
    lines += ["", "## All trials", ""]
    shown = [
        "number",
        "state",
        *param_cols,
        *objective_cols,
        *(["feasible"] if "feasible" in frame else []),
        *stage_cols,
    ]
    lines.append(markdown_table(frame[shown]))
    failed = frame[frame["state"] != "COMPLETE"]
    if len(failed):
        lines += ["", "## Failed and pruned trials", ""]
        lines.append(markdown_table(failed[["number", "state", "error"]]))
    lines.append("")
    return "\n".join(lines) + f"\n{len(completed)} completed trials.\n"
