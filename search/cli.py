"""The `autotune` command: validate a space, run the study, write the run folder.

    autotune --space spaces/tiny.yaml --target cpu [--trials N] [--out DIR] [--seed S] [--dry-run]
    autotune --space F --target T --storage URL [--study NAME] [--workers N]   (shared study)
    autotune bench MODEL_DIR --target cpu [--space FILE]     (see search/bench_command.py)
    autotune report RUN | compare RUN_A RUN_B ... | select RUN --where ...   (reports of a run)

Exit codes: 0 done; 1 the study ran but no trial completed, or it stopped on --max-failures;
2 bad input (space file, target, run folder), reported in one message without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autotune.search.errors import UsageError, require_gpu
from autotune.search.space import (
    SAMPLERS,
    TRAIN_KNOBS,
    Space,
    SpaceError,
    load_space,
    model_path,
    model_source,
)
from autotune.search.storage import DEFAULT_HEARTBEAT_S, MISSED_HEARTBEATS
from autotune.spaces import DEFAULT_SPACE


def _bench():
    from autotune.search.bench_command import main

    return main


def _cache():
    from autotune.search.cache_command import main

    return main


def _report():
    from autotune.search.report_command import main

    return main


def _compare():
    from autotune.search.compare_command import main

    return main


def _select():
    from autotune.search.select_command import main

    return main


# Sub-commands; anything else is the study itself (`autotune --space ... --target ...`).
COMMANDS = {
    "bench": _bench,
    "cache": _cache,
    "report": _report,
    "compare": _compare,
    "select": _select,
}


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]]()(argv[1:])
    args = parse_args(argv)
    try:
        space = load_space(args.space, args.target)
        if args.trials is not None:
            if args.trials < 1:
                raise UsageError("--trials must be at least 1")
            space.budget.trials = args.trials
        apply_strategy_flags(space, args)
        if args.dry_run:
            return dry_run(space, args)
        if args.target == "cuda":
            require_gpu()
        if args.heartbeat < 1:
            raise UsageError("--heartbeat must be at least 1 second")
        from autotune.search.launch import run

        return run(space, args, argv)
    except SpaceError as error:
        print(f"autotune: error: {error}", file=sys.stderr)
        return 2
    except UsageError as error:
        print(f"autotune: error: {error}", file=sys.stderr)
        return 2


def apply_strategy_flags(space: Space, args: argparse.Namespace) -> None:
    """--sampler and --max-failures override the space's strategy section."""
    from autotune.search.samplers import grid_values

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


def go_offline(space: Space) -> None:
    """No hub calls when everything is local (set before transformers and datasets import)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if model_source(space) in ("tiny", "local"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def dry_run(space: Space, args: argparse.Namespace) -> int:
    go_offline(space)
    from autotune.candidates.data import load_dataset

    dataset = load_dataset(space)
    out = args.out or Path("runs") / space.name
    print(f"space {space.name} ({space.source}) is valid for target {args.target}")
    source = model_source(space)
    if source == "tiny":
        print(f"  model: tiny Phi-3 built locally: {space.model.tiny.model_dump()}")
    elif source == "local":
        print(f"  model: local folder {model_path(space)}")
    else:
        print(
            f"  model: hub id {space.model.path}"
            + (f" @ {space.model.revision}" if space.model.revision else "")
        )
        if not hub_cached(space.model.path or "", space.model.revision):
            print(
                f"  warning: {space.model.path} is not in the local Hugging Face cache; "
                "it will be downloaded at run time (needs network access)",
                file=sys.stderr,
            )
    print(
        f"  data: {len(dataset.train)} train / {len(dataset.eval)} eval examples"
        + (f", labels {dataset.labels}" if dataset.labels else "")
    )
    searched = set(TRAIN_KNOBS) & set(space.search)  # shown with the knobs below
    print(f"  train: {space.train.model_dump(exclude=searched)}")
    for name, knob in space.search.items():
        print(f"  search.{name}: {knob.model_dump() if hasattr(knob, 'model_dump') else knob}")
    print(f"  objectives: {space.objectives}")
    print(f"  constraints: {[str(c) for c in space.parsed_constraints()]}")
    print(f"  select: best {space.preferred_objective()} on the feasible Pareto front")
    strategy = space.strategy
    print(
        f"  strategy: sampler {strategy.sampler}, siblings over {space.expanded_knobs() or 'none'}"
        f", pruning {'on' if strategy.prune else 'off'}, stop after {strategy.max_failures} "
        "failures in a row"
    )
    print(
        f"  budget: {space.budget.trials} completed trials"
        + (f", timeout {space.budget.timeout:.0f} s" if space.budget.timeout else "")
    )
    print(f"  out: {out}")
    if args.storage:
        from autotune.search.storage import parse_storage

        spec = parse_storage(args.storage)
        print(f"  storage: {spec.shown()} ({spec.kind}), study {args.study or space.name}")
    return 0


def hub_cached(repo: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "config.json", revision=revision)
    return isinstance(found, str)


def quiet_libraries() -> None:
    """Keep library progress bars, INFO logs and deprecation warnings off the terminal."""
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    import logging

    # bitsandbytes warns at import that an optional CPU kernel package is missing (it falls back).
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import optuna
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # Failed trials are reported by autotune itself, with the traceback in trials/<n>/error.log.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
