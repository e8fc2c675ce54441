"""How the study command runs in processes, and writes the run folder at the end.

- One process (the default): the study lives in the run folder's SQLite database, which this
  process holds (RunLock); trials a killed run left RUNNING are run again.
- A worker of a shared study (`--storage URL`): any number of processes, on any machines, join
  the study and run trials until it holds the budget of completed trials; the trials of a worker
  that died are failed and run again (heartbeats, or a process check on this machine).
- `--workers N`: this process prepares the study and the base model, starts N such workers on
  this machine (each on its own GPU or CPU cores), waits for them, and writes the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna

from autotune.commands.finish import confirm_front, finish, write_outputs_locked
from autotune.commands.local_workers import run_local_workers
from autotune.console.json_output import json_summary, stdout_to_stderr
from autotune.console.progress import Progress
from autotune.console.summary import print_summary
from autotune.errors import UsageError
from autotune.search.confirm import remember_prompts
from autotune.search.reference import measure_reference
from autotune.search.run import Run, prepare_run
from autotune.search.study import count, open_study, run_study
from autotune.search.workers import (
    STUDY_DB,
    RunLock,
    StorageSpec,
    Where,
    parse_storage,
    run_folder_study,
    shared_study,
)
from autotune.spaces import Space
from autotune.startup import start_process, worker_threads


def run(space: Space, args: argparse.Namespace, argv: list[str]) -> int:
    """The study as the command line asks; with --json, its summary is all stdout gets."""
    if not args.json or args.worker_slot:
        return launch(space, args, argv, {})
    summary: dict = {}
    with stdout_to_stderr():  # libraries (and the summary table) write to stdout too
        code = launch(space, args, argv, summary)
    print(json.dumps({**summary, "exit_code": code}, indent=2))
    return code


def launch(space: Space, args: argparse.Namespace, argv: list[str], summary: dict) -> int:
    """One process, one worker, or N local workers; `summary` receives what --json prints."""
    out = (args.out or Path("runs") / space.name).resolve()
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.storage is None:
        if args.workers > 1:
            raise UsageError(
                f"--workers {args.workers} needs a storage the workers share: "
                f"--storage journal:{out / 'study.journal'} (this machine) or "
                "--storage postgresql://USER@HOST/DB (several machines)"
            )
        return run_alone(space, args, out, summary)
    spec = parse_storage(args.storage)
    if args.workers > 1:
        return run_local_workers(space, args, argv, out, spec, summary)
    return run_worker(space, args, out, spec, summary)


def run_alone(space: Space, args: argparse.Namespace, out: Path, summary: dict) -> int:
    """The default: this process alone runs the study in `out/study.db`."""
    start = time.perf_counter()
    start_process(space.train.threads)
    if args.resume and not (out / STUDY_DB).is_file():
        raise UsageError(f"--resume: no study to continue in {out} (no {STUDY_DB})")
    if out.is_dir():  # refuse a second process on the folder before any work
        RunLock(out).acquire().release()
    progress = Progress(quiet=args.quiet)
    prepared = prepare_run(space, args.target, out, args.cache or out / "cache", progress)
    out.mkdir(parents=True, exist_ok=True)
    where, on_open = run_folder_study(space, out)
    with RunLock(out):
        return run_study_in(prepared, progress, args, where, on_open, summary, start)


def run_worker(
    space: Space, args: argparse.Namespace, out: Path, spec: StorageSpec, summary: dict
) -> int:
    """One worker of the study in `spec`, alone or one of `--workers N` (`--worker-slot K/N`)."""
    start = time.perf_counter()
    start_process(worker_threads(space, args.worker_slot))
    where = shared_study(space, spec, args.heartbeat, args.study, args.worker_slot or "")
    if args.resume and not where.exists():
        raise UsageError(f"--resume: no study {where.study_name!r} in {spec.shown()}")
    progress = Progress(quiet=args.quiet)
    prepared = prepare_run(space, args.target, out, args.cache or out / "cache", progress)
    out.mkdir(parents=True, exist_ok=True)
    report = not args.worker_slot  # a worker of --workers N leaves the report to its parent
    return run_study_in(prepared, progress, args, where, where.tidy, summary, start, report)


def run_study_in(
    run_state: Run,
    progress: Progress,
    args: argparse.Namespace,
    where: Where,
    on_open: Callable,
    summary: dict,
    start: float,
    report: bool = True,
) -> int:
    """Open the study (only now that its inputs passed every check), measure the untrained base,
    run trials until the budget, and (unless `report` is False) write the run folder's outputs
    and print the summary; the exit code. `start` is when the command began."""
    space, out = run_state.space, run_state.out
    study = open_study(space, args.target, where.storage, args.seed, where.study_name, where.worker)
    requeued = on_open(study)
    if requeued:
        progress.note(f"trials {requeued} were interrupted: marked failed and queued again")
    measure_reference(run_state, study)
    remember_prompts(study, [e.prompt for e in run_state.dataset.eval], run_state.space)
    completed = count(study, optuna.trial.TrialState.COMPLETE)
    progress.note(
        f"study {where.study_name} ({space.strategy.sampler}): {space.budget.trials} completed "
        f"trials wanted, {completed} so far; run folder {out}"
        + (f"; worker {where.worker}" if where.worker else "")
    )
    interrupted = False
    outcome = None
    try:
        with progress.study(space.budget.trials, completed):
            outcome = run_study(
                run_state,
                study,
                space.budget.trials,
                space.budget.timeout,
                lambda: where.tidy(study),
            )
    except KeyboardInterrupt:
        interrupted = True
    outputs = None
    if report and not interrupted:
        confirm_front(run_state, study, progress)
    if report:
        with progress.step("report"):
            outputs = write_outputs_locked(
                study, space, args.target, out, time.perf_counter() - start
            )
        summary.update(json_summary(space, args.target, out, outputs))
    if interrupted:
        completed = count(study, optuna.trial.TrialState.COMPLETE)
        print(
            f"autotune: interrupted; the {completed} completed trials are kept in the study; "
            "run the same command to continue",
            file=sys.stderr,
        )
        return 130
    if outputs is not None:
        print_summary(space, outputs)
    return finish(study, space, outcome)
