"""The `autotune` command: validate a space, run the study, write the run folder.

    autotune --space spaces/tiny.yaml --target cpu [--trials N] [--out DIR] [--seed S] [--dry-run]

Exit codes: 0 done; 1 the study ran but no trial completed; 2 bad input (space file, target,
run folder), reported in one message without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from autotune.search.space import Space, SpaceError, load_space, model_path, model_source
from autotune.spaces import DEFAULT_SPACE


class UsageError(Exception):
    """Bad input that is not in the space file (target, run folder)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune",
        description="Search LoRA ranks, learning rates and export precisions for the "
        "Pareto-best fine-tuned model on your hardware.",
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
        "--dry-run", action="store_true", help="validate the space and print the plan"
    )
    parser.add_argument("--quiet", action="store_true", help="print only failures and the result")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        space = load_space(args.space, args.target)
        if args.trials is not None:
            if args.trials < 1:
                raise UsageError("--trials must be at least 1")
            space.budget.trials = args.trials
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


def require_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            "--target cuda needs a CUDA GPU and none is visible here "
            "(torch.cuda.is_available() is False); use --dry-run to validate the space only"
        )


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


def run(space: Space, args: argparse.Namespace) -> int:
    go_offline(space)
    os.environ.setdefault("OMP_NUM_THREADS", str(space.train.threads))
    quiet_libraries()
    import torch

    torch.set_num_threads(space.train.threads)
    import optuna
    from autotune.reports.outputs import write_outputs
    from autotune.search.progress import Progress
    from autotune.search.study import StudyMismatch, count, open_study, prepare_run, run_study
    from autotune.search.summary import print_summary

    start = time.perf_counter()
    out = (args.out or Path("runs") / space.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(quiet=args.quiet)
    try:
        study = open_study(space, args.target, f"sqlite:///{out / 'study.db'}", args.seed)
    except StudyMismatch as error:
        raise UsageError(str(error)) from None
    run_state = prepare_run(space, args.target, out, args.cache or out / "cache", progress)
    progress.note(
        f"study {space.name}: {space.budget.trials} completed trials wanted, run folder {out}"
    )
    interrupted = False
    try:
        run_study(run_state, study, space.budget.trials, space.budget.timeout)
    except KeyboardInterrupt:
        interrupted = True
    outputs = write_outputs(study, space, args.target, out, time.perf_counter() - start)
    completed = count(study, optuna.trial.TrialState.COMPLETE)
    if interrupted:
        print(
            f"autotune: interrupted; the {completed} completed trials are kept in {out}; "
            "run the same command to continue",
            file=sys.stderr,
        )
        return 130
    print_summary(study, space, outputs)
    if completed == 0:
        print(
            "autotune: no trial completed; see the errors in trials.csv and trials/*/error.log",
            file=sys.stderr,
        )
        return 1
    return 0
