"""`autotune report RUN`: write a run folder's report again from its study.

    autotune report RUN [--out DIR]

Writes report.html (one self-contained file), report.md, the figures and trials.csv /
trials.parquet, into RUN (or --out). A study still running gets a report of what it has so far.
Exit codes: 0 written; 2 bad input (no such run folder, no study in it), in one message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autotune.search.errors import UsageError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune report",
        description="Write report.html, report.md, the figures and the trials tables of a run.",
    )
    parser.add_argument("run", type=Path, help="run folder (with study.db)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write (default: RUN)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        from autotune.reports.outputs import write_report
        from autotune.reports.results import RunResults

        results = RunResults.from_folder(args.run)
        outputs = write_report(results, args.out or args.run)
    except UsageError as error:
        print(f"autotune report: error: {error}", file=sys.stderr)
        return 2
    print(f"report: {outputs.report_html}  {outputs.report_md}")
    return 0
