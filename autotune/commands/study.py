"""`autotune --space F --target T`: validate a space, run the study, write the run folder.

    autotune --space spaces/tiny.yaml --target cpu [--trials N] [--out DIR] [--seed S] [--dry-run]
    autotune --space F --target T --storage URL [--study NAME] [--workers N]   (shared study)

The space is loaded and checked first (spaces/load.py); `--dry-run` stops after the plan
(autotune/commands/dry_run.py); otherwise the study runs in this process, as one worker of a
shared study, or as N local workers (autotune/commands/run.py), and the run folder's report is
written at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autotune.commands.dry_run import dry_run
from autotune.commands.options import StudyOptions
from autotune.errors import UsageError
from autotune.search.samplers import grid_values
from autotune.search.workers.storage import DEFAULT_HEARTBEAT_S, MISSED_HEARTBEATS
from autotune.spaces import DEFAULT_SPACE, Space, SpaceError, load_space
from autotune.spaces.schema import SAMPLERS
from autotune.startup import prepare_environment, require_gpu, worker_threads


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune",
        description="Search LoRA ranks, learning rates and export precisions for the "
        "Pareto-best fine-tuned model on your hardware.",
        epilog="other commands: 'autotune bench MODEL_DIR ...' measures a model folder; "
        "'autotune cache ls|du|prune ...' manages the stage cache; 'autotune report RUN' writes "
        "a run's report; 'autotune compare RUN_A RUN_B ...' compares runs; 'autotune select RUN "
        "--where ...' ranks and exports candidates (each takes --help)",
    )
    parser.add_argument(
        "--space",
        type=Path,
        default=DEFAULT_SPACE,
        help="space file (YAML); default: the embedded tiny space",
    )
    parser.add_argument(
        "--target",
        choices=("cpu", "cuda"),
        default="cpu",
        help="hardware the candidates are exported for and measured on",
    )
    parser.add_argument(
        "--trials", type=int, help="completed trials to reach (overrides budget.trials)"
    )
    parser.add_argument("--out", type=Path, help="run folder (default: runs/<space name>)")
    parser.add_argument("--cache", type=Path, help="stage cache folder (default: <out>/cache)")
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    parser.add_argument(
        "--sampler", choices=SAMPLERS, help="Optuna sampler (overrides strategy.sampler; tpe)"
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        help="stop after this many failed trials in a row (overrides strategy.max_failures; 5)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the study in --out (an error if there is none); the same command without "
        "--resume also continues it",
    )
    shared = parser.add_argument_group(
        "workers sharing one study (see README: Scaling out)",
    )
    shared.add_argument(
        "--storage",
        metavar="URL",
        help="the study's storage, shared by every worker that names it: "
        "postgresql://USER@HOST/DB, mysql://..., sqlite:///PATH or journal:PATH "
        "(default: <out>/study.db, one process)",
    )
    shared.add_argument("--study", metavar="NAME", help="study name (default: the space's name)")
    shared.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="start N worker processes on this machine, each on its own GPU or CPU cores "
        "(needs --storage)",
    )
    shared.add_argument(
        "--heartbeat",
        type=int,
        default=DEFAULT_HEARTBEAT_S,
        metavar="S",
        help=f"seconds between a worker's heartbeats (database storages); a trial whose worker "
        f"missed {MISSED_HEARTBEATS} is failed and run again (default {DEFAULT_HEARTBEAT_S})",
    )
    shared.add_argument("--worker-slot", help=argparse.SUPPRESS)  # K/N, set by --workers
    parser.add_argument(
        "--dry-run", action="store_true", help="validate the space and print the plan"
    )
    parser.add_argument("--quiet", action="store_true", help="print only failures and the result")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON summary (selected trial, its metrics, paths) on stdout at the end, and "
        "nothing else on stdout",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    space = load_space(args.space, args.target)
    if args.trials is not None:
        if args.trials < 1:
            raise UsageError("--trials must be at least 1")
        space.budget.trials = args.trials
    apply_strategy_flags(space, args)
    options = study_options(args, space, argv)
    if args.dry_run:
        return dry_run(space, options)
    if options.target == "cuda":
        require_gpu()
    if options.heartbeat < 1:
        raise UsageError("--heartbeat must be at least 1 second")
    # Hugging Face and OpenMP read these when imported: set them before the study's modules load.
    prepare_environment(space, worker_threads(space, options.worker_slot))
    from autotune.commands.run import run

    return run(space, options)


def study_options(args: argparse.Namespace, space: Space, argv: list[str]) -> StudyOptions:
    """What the dry run and the launch need of the command line (the rest is in the space)."""
    return StudyOptions(
        target=args.target,
        out=args.out or Path("runs") / space.name,
        cache=args.cache,
        seed=args.seed,
        storage=args.storage,
        study=args.study,
        workers=args.workers,
        worker_slot=args.worker_slot,
        heartbeat=args.heartbeat,
        resume=args.resume,
        quiet=args.quiet,
        json=args.json,
        argv=tuple(argv),
    )


def apply_strategy_flags(space: Space, args: argparse.Namespace) -> None:
    """--sampler and --max-failures override the space's strategy section."""
    if args.sampler:
        space.strategy.sampler = args.sampler
    if args.max_failures is not None:
        if args.max_failures < 1:
            raise UsageError("--max-failures must be at least 1")
        space.strategy.max_failures = args.max_failures
    if space.strategy.sampler == "grid":
        try:
            grid_values(space)
        except ValueError as error:
            raise SpaceError(space.source, "strategy.sampler", str(error)) from None
