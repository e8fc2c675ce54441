"""`autotune select RUN`: rank a run's feasible Pareto candidates under constraints given now,
and export the chosen one as a deployment bundle.

    autotune select RUN [--where 'accuracy>=0.8' ...] [--prefer OBJECTIVE] [--export DIR] [--json]

Exit codes: 0 a candidate meets the constraints; 1 none does (the closest one is named, with what
it misses); 2 bad input (run folder, --where expression, metric, objective, export folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from autotune.console.ranking import ranking_table
from autotune.errors import UsageError
from autotune.reports.bundle import write_selected
from autotune.reports.results import RunResults
from autotune.reports.selection import choose, constraints_for, parse_where
from autotune.search.decide import conclude
from autotune.search.events import StudyEvents


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune select",
        description="Rank the feasible Pareto candidates of a run under constraints (the "
        "study's, with --where ones replacing a bound on the same metric or adding one) and "
        "export the best: the onnxruntime-genai model folder, a model card and selection.json.",
    )
    parser.add_argument("run", type=Path, help="run folder (with study.db)")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="EXPR",
        help="a constraint METRIC>=NUMBER or METRIC<=NUMBER, e.g. 'accuracy>=0.8' or "
        "'decode_ms.p90<=5' (repeatable)",
    )
    parser.add_argument(
        "--prefer",
        metavar="OBJECTIVE",
        help="the objective that ranks the front (default: the "
        "space's select.prefer, else its first objective)",
    )
    parser.add_argument("--export", type=Path, metavar="DIR", help="write the chosen bundle here")
    parser.add_argument(
        "--confirm",
        action="store_true",
        help="first time the top tier's candidates again, in turns, on this machine now, and "
        "rank them on those figures (the confirmation round; it replaces a stored one)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the ranking and the choice as JSON on stdout"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    where = [parse_where(text) for text in args.where]
    if args.export is not None:
        check_export_folder(args.export)
    results = RunResults.from_folder(args.run)
    if args.confirm:
        results = confirm_again(results)
    constraints = constraints_for(results, where)
    choice = choose(results, constraints, args.prefer)
    exported = None
    if choice.selection.chosen is not None and args.export is not None:
        ranking = [c.number for c in choice.ranking]
        exported = write_selected(results, choice.selection, args.export, constraints, ranking)
    if args.json:
        print(json.dumps(as_json(results, choice, exported), indent=2))
    else:
        print_choice(results, choice, exported)
    if choice.selection.chosen is None:
        wanted = ", ".join(map(str, constraints)) or "the constraints"
        print(
            f"autotune select: no candidate meets {wanted}; {choice.missing(results)}",
            file=sys.stderr,
        )
        return 1
    return 0


def confirm_again(results: RunResults) -> RunResults:
    """A new confirmation round on the run's top tier (search/decide.py); the results with
    the pick made on its figures."""
    decision = conclude(results.study, results.space, results.target, StudyEvents(), again=True)
    return RunResults.of(
        results.study, results.space, results.target, results.label, results.folder, decision
    )


def check_export_folder(folder: Path) -> None:
    """Refuse to replace a folder that is not an earlier export (or empty)."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--export {folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "selection.json").is_file():
        raise UsageError(
            f"--export {folder}: the folder holds other files; give a new or empty folder (or an "
            "earlier export, which is replaced)"
        )


def rows(results, choice) -> list[dict]:
    """The ranked candidates: trial, parameters, objective values, constrained figures."""
    space = results.space
    ties = {c.number for c in choice.selection.ties}
    found = []
    for rank, candidate in enumerate(choice.ranking, 1):
        row = results.row(candidate.number)
        found.append(
            {
                "rank": rank,
                "trial": candidate.number,
                # cannot be told apart from the best on the preferred objective
                # (decisions/dominance.py)
                "tied": candidate.number in ties,
                **{k: _plain(row[k]) for k in space.search if k in row.index and _present(row[k])},
                **{space.column(name): value for name, value in candidate.values.items()},
                **{c.metric: _plain(row[c.metric]) for c in choice.constraints},
            }
        )
    return found


def print_choice(results, choice, exported: Path | None) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    ranked = rows(results, choice)
    console.print(f"constraints: {', '.join(map(str, choice.constraints)) or 'none'}")
    if ranked:
        title = (
            f"{results.label}: the top tier, best first (tied: indistinguishable from the best "
            "on the preferred objective)"
        )
        console.print(ranking_table(title, ranked))
    if choice.selection.chosen is not None:
        console.print(
            f"selected: trial {choice.selection.chosen.number}: {choice.selection.reason}"
        )
    if exported is not None:
        console.print(f"exported: {exported} (model folder, README.md model card, selection.json)")


def as_json(results, choice, exported: Path | None) -> dict:
    chosen = choice.selection.chosen
    return {
        "run": str(results.folder),
        "constraints": [str(c) for c in choice.constraints],
        "ranking": rows(results, choice),
        "selected": chosen.number if chosen else None,
        "reason": choice.selection.reason if chosen else choice.missing(results),
        "closest": choice.closest.number if choice.closest else None,
        "export": str(exported) if exported else None,
    }


def _present(value) -> bool:
    return value is not None and value == value  # not None, not NaN


def _plain(value):
    return value.item() if hasattr(value, "item") else value
