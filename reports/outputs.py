"""Everything a study leaves in its run folder: trials.csv and trials.parquet, the figures,
report.md and report.html, and selected/ (the model, its card and selection.json)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import optuna

from autotune.decisions.record import TrialRecord
from autotune.decisions.selection import Selection
from autotune.errors import UsageError
from autotune.reports.bundle import write_selected
from autotune.reports.document import to_markdown
from autotune.reports.figures import write_figures
from autotune.reports.html import to_html
from autotune.reports.report import report_blocks
from autotune.reports.results import RunResults
from autotune.search.decide import Decision
from autotune.spaces import Space


@dataclass(frozen=True)
class RunOutputs:
    trials_csv: Path
    trials_parquet: Path
    figures: dict[str, Path]
    report_md: Path
    report_html: Path
    selected: Path | None
    selection: Selection
    records: list[TrialRecord]  # every trial, as the reports read them
    reference: TrialRecord | None = None  # the untrained base

    @property
    def pareto_png(self) -> Path:
        return self.figures["pareto"]


def write_report(results: RunResults, out: Path, wall_seconds: float | None = None) -> RunOutputs:
    """The tables, figures and reports of a run in `out` (selected/ is left as it is)."""
    out.mkdir(parents=True, exist_ok=True)
    trials_csv, trials_parquet = out / "trials.csv", out / "trials.parquet"
    results.frame.to_csv(trials_csv, index=False)
    results.frame.to_parquet(trials_parquet, index=False)
    figures = write_figures(results, out)
    blocks = report_blocks(results, figures, wall_seconds)
    report_md, report_html = out / "report.md", out / "report.html"
    report_md.write_text(to_markdown(blocks, out))
    title = f"autotune report: {results.space.name} on {results.target}"
    report_html.write_text(to_html(blocks, title))
    selected = out / "selected"
    return RunOutputs(
        trials_csv,
        trials_parquet,
        figures,
        report_md,
        report_html,
        selected if (selected / "selection.json").is_file() else None,
        results.selection,
        results.records,
        results.reference,
    )


def write_outputs(
    study: optuna.Study,
    space: Space,
    target: str,
    out: Path,
    wall_seconds: float | None = None,
    decision: Decision | None = None,
) -> RunOutputs:
    """At the end of a study: the selected candidate's bundle and the run's reports, from the
    search's `decision` (search/decide.py; made from the study when None)."""
    results = RunResults.of(study, space, target, out.resolve().name, out, decision)
    try:
        write_selected(results, results.selection, out / "selected")
    except UsageError as error:  # the chosen model is not on this machine (or was pruned)
        print(f"autotune: selected/ not written: {error}", file=sys.stderr)
    return write_report(results, out, wall_seconds)
