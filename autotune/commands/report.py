"""`autotune report RUN`: write a run folder's report again from its study.

    autotune report RUN [--out DIR]
    autotune report --storage URL [--study NAME] --out DIR     (a study workers share)

Writes report.html (one self-contained file), report.md, the figures and trials.csv /
trials.parquet, into RUN (or --out). A study still running gets a report of what it has so far;
a shared study's report covers every worker's trials, from any machine that reaches its storage.
Exit codes: 0 written; 2 bad input (no such run folder, no study in it), in one message.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna

from autotune.errors import UsageError
from autotune.reports.outputs import write_report
from autotune.reports.results import RunResults, load_finished_run
from autotune.search.workers.storage import open_storage, parse_storage


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune report",
        description="Write report.html, report.md, the figures and the trials tables of a run.",
    )
    parser.add_argument("run", type=Path, nargs="?", help="run folder (with study.db)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write (default: RUN)")
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="read the study from this storage instead of a run folder (postgresql://..., "
        "sqlite:///PATH, journal:PATH)",
    )
    parser.add_argument(
        "--study", metavar="NAME", help="study name (default: the storage's only study)"
    )
    args = parser.parse_args(argv)
    if (args.run is None) == (args.storage is None):
        parser.error("give a run folder or --storage URL (not both)")
    if args.storage and args.out is None:
        parser.error("--storage needs --out DIR")
    return args


def shared_results(url: str, study: str | None, out: Path) -> RunResults:
    """The results of the study `study` (or the only one) in the storage `url`."""
    spec = parse_storage(url)
    if spec.kind == "journal" and not spec.journal_path.is_file():
        raise UsageError(f"--storage {url}: no such journal file {spec.journal_path}")
    storage = open_storage(spec)
    if study is None:
        names = optuna.get_all_study_names(storage)
        if len(names) != 1:
            held = f"studies {names}" if names else "no study"
            raise UsageError(f"{spec.shown()} holds {held}: name one with --study")
        study = names[0]
    loaded = load_finished_run(storage, study, shown=spec.shown())
    return RunResults.of(*loaded, label=study, folder=out)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.storage:
        results = shared_results(args.storage, args.study, args.out)
    else:
        results = RunResults.from_folder(args.run)
    outputs = write_report(results, args.out or args.run)
    print(f"report: {outputs.report_html}  {outputs.report_md}")
    return 0
