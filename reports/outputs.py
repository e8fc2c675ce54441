"""Everything a study leaves in its run folder: trials.csv, pareto.png, report.md, selected/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from autotune.reports.bundle import write_selected
from autotune.reports.markdown import report_markdown
from autotune.reports.plot import pareto_plot
from autotune.reports.table import candidates, trials_frame
from autotune.search.pareto import Selection, select
from autotune.search.space import Space


@dataclass(frozen=True)
class RunOutputs:
    trials_csv: Path
    pareto_png: Path
    report_md: Path
    selected: Path | None
    selection: Selection


def write_outputs(
    study: optuna.Study, space: Space, target: str, out: Path, wall_seconds: float | None = None
) -> RunOutputs:
    """Select a candidate and write the run folder's tables, plot, report and bundle."""
    frame = trials_frame(study, space)
    completed = candidates(frame, space) if len(frame) else []
    selection = select(completed, space.objectives, space.preferred_objective())
    trials_csv = out / "trials.csv"
    frame.to_csv(trials_csv, index=False)
    pareto_png = pareto_plot(space, completed, selection, out / "pareto.png")
    report_md = out / "report.md"
    report_md.write_text(report_markdown(space, target, frame, selection, wall_seconds))
    selected = write_selected(space, target, frame, selection, out / "selected")
    return RunOutputs(trials_csv, pareto_png, report_md, selected, selection)
