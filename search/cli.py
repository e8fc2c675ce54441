"""The `autotune` command: validate a space, run the study, write the run folder.

    autotune --space spaces/tiny.yaml --target cpu [--trials N] [--out DIR] [--seed S] [--dry-run]
    autotune bench MODEL_DIR --target cpu [--space FILE]     (see search/bench_command.py)
    autotune report RUN | compare RUN_A RUN_B ... | select RUN --where ...   (reports of a run)

Exit codes: 0 done; 1 the study ran but no trial completed, or it stopped on --max-failures;
2 bad input (space file, target, run folder), reported in one message without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autotune.search.errors import UsageError, require_gpu
from autotune.search.space import SAMPLERS, Space, SpaceError, load_space, model_path, model_source
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
        return run(space, args)
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
    print(f"  train: {space.train.model_dump()}")
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
    import optuna
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # Failed trials are reported by autotune itself, with the traceback in trials/<n>/error.log.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def run(space: Space, args: argparse.Namespace) -> int:
    go_offline(space)
    os.environ.setdefault("OMP_NUM_THREADS", str(space.train.threads))
    quiet_libraries()
    import torch

    torch.set_num_threads(space.train.threads)
    from autotune.search.resume import RunFolderBusy, RunLock

    out = (args.out or Path("runs") / space.name).resolve()
    if args.resume and not (out / "study.db").is_file():
        raise UsageError(f"--resume: no study to continue in {out} (no study.db)")
    out.mkdir(parents=True, exist_ok=True)
    try:
        with RunLock(out):
            if not args.json:
                return run_locked(space, args, out, {})
            summary: dict = {}
            with stdout_to_stderr():  # libraries (and the summary table) write to stdout too
                code = run_locked(space, args, out, summary)
            print(json.dumps({**summary, "exit_code": code}, indent=2))
            return code
    except RunFolderBusy as error:
        raise UsageError(str(error)) from None


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (Python or native code) to stderr inside the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_locked(space: Space, args: argparse.Namespace, out: Path, summary: dict) -> int:
    """The study in the run folder `out`, which this process holds; `summary` receives what
    --json prints."""
    import optuna
    from autotune.reports.outputs import write_outputs
    from autotune.search.progress import Progress
    from autotune.search.resume import requeue_interrupted
    from autotune.search.study import StudyMismatch, count, open_study, prepare_run, run_study
    from autotune.search.summary import print_summary

    start = time.perf_counter()
    progress = Progress(quiet=args.quiet)
    try:
        study = open_study(space, args.target, f"sqlite:///{out / 'study.db'}", args.seed)
    except StudyMismatch as error:
        raise UsageError(str(error)) from None
    requeued = requeue_interrupted(study)
    if requeued:
        progress.note(f"trials {requeued} were interrupted: marked failed and queued again")
    run_state = prepare_run(space, args.target, out, args.cache or out / "cache", progress)
    completed = count(study, optuna.trial.TrialState.COMPLETE)
    progress.note(
        f"study {space.name} ({space.strategy.sampler}): {space.budget.trials} completed trials "
        f"wanted, {completed} so far; run folder {out}"
    )
    interrupted = False
    outcome = None
    try:
        with progress.study(space.budget.trials, completed):
            outcome = run_study(run_state, study, space.budget.trials, space.budget.timeout)
    except KeyboardInterrupt:
        interrupted = True
    with progress.step("report"):
        outputs = write_outputs(study, space, args.target, out, time.perf_counter() - start)
    completed = count(study, optuna.trial.TrialState.COMPLETE)
    summary.update(json_summary(study, space, args.target, out, outputs))
    if interrupted:
        print(
            f"autotune: interrupted; the {completed} completed trials are kept in {out}; "
            "run the same command to continue",
            file=sys.stderr,
        )
        return 130
    print_summary(study, space, outputs)
    stopped = outcome.stop_reason(space.strategy) if outcome is not None else None
    if stopped:
        print(f"autotune: {stopped}; see trials.csv and trials/*/error.log", file=sys.stderr)
        return 1
    if completed == 0:
        print(
            "autotune: no trial completed; see the errors in trials.csv and trials/*/error.log",
            file=sys.stderr,
        )
        return 1
    return 0


def json_summary(study, space: Space, target: str, out: Path, outputs) -> dict:
    """What --json prints: the trial counts, the selected trial with its figures, the paths."""
    import optuna

    chosen = outputs.selection.chosen
    states = optuna.trial.TrialState
    counts = {
        state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
        for state in (states.COMPLETE, states.PRUNED, states.FAIL, states.WAITING)
    }
    selected = None
    if chosen is not None:
        trial = study.get_trials(deepcopy=False)[chosen.number]
        selected = {
            "trial": chosen.number,
            "reason": outputs.selection.reason,
            "params": trial.user_attrs.get("params", trial.params),
            "objectives": chosen.values,
            "metrics": trial.user_attrs.get("metrics", {}),
            "path": str(outputs.selected) if outputs.selected else None,
        }
    return {
        "space": space.name,
        "target": target,
        "out": str(out),
        "trials": counts,
        "selected": selected,
        "selection": outputs.selection.reason,
        "files": {
            "report_html": str(outputs.report_html),
            "report_md": str(outputs.report_md),
            "trials_csv": str(outputs.trials_csv),
            "trials_parquet": str(outputs.trials_parquet),
            **{f"{name}_png": str(path) for name, path in outputs.figures.items()},
        },
    }
