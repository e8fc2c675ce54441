"""`autotune compare RUN_A RUN_B [...]`: several runs side by side.

    autotune compare RUN_A RUN_B [...] [--out DIR]

Writes compare.html (self-contained), compare.md and compare_pareto.png into --out (default
./compare): overlaid Pareto fronts, each run's selected and best-per-objective candidates, and
what differs. Runs of different spaces are allowed; they are compared on the first run's
objectives, and on a quality figure (rouge_l, accuracy, ...) runs that score different data or
judge by different metrics are called not comparable rather than one the winner.
Exit codes: 0 written; 2 bad input (a run folder without a study), in one message.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autotune.errors import UsageError
from autotune.reports.compare import compare_runs
from autotune.reports.results import RunResults


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune compare",
        description="Compare runs: overlaid Pareto fronts, selected and best candidates, "
        "differences (as HTML and Markdown).",
    )
    parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders (2 or more)")
    parser.add_argument(
        "--out", type=Path, default=Path("compare"), metavar="DIR", help="default: ./compare"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if len(args.runs) < 2:
        raise UsageError("expected at least two run folders")
    runs = [RunResults.from_folder(folder) for folder in args.runs]
    labels = [r.label for r in runs]
    for index, run in enumerate(runs):
        if labels.count(run.label) > 1:  # same folder names: tell them apart
            run.label = f"{index + 1}:{run.label}"
    outputs = compare_runs(runs, args.out)
    print(f"compare: {outputs.html}  {outputs.markdown}")
    return 0
