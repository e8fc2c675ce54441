"""How a study runs in processes.

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
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.search.errors import UsageError
from autotune.search.space import Space
from autotune.search.storage import StorageSpec, open_storage, parse_storage
from autotune.search.workers import Placement, pin_cpu, this_worker, visible_gpus

STUDY_DB = "study.db"


@dataclass
class Where:
    """Where the study lives, and how this process shares it."""

    storage: object  # an Optuna storage, or a URL Optuna opens itself
    study_name: str
    worker: str  # "" for the only process of a run folder; else this worker, for its seed
    tidy: Callable[[Any], object]  # tidy(study) fails and queues again dead workers' trials


def run(space: Space, args: argparse.Namespace, argv: list[str]) -> int:
    """The study as the command line asks; with --json, its summary is all stdout gets."""
    if not args.json or args.worker_slot:
        return launch(space, args, argv, {})
    from autotune.search.json_output import stdout_to_stderr

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


def start_process(space: Space, threads: int) -> None:
    """Offline, quiet libraries, and `threads` torch threads (before torch starts any)."""
    from autotune.search.cli import go_offline, quiet_libraries

    go_offline(space)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    quiet_libraries()
    import torch

    torch.set_num_threads(threads)


def run_alone(space: Space, args: argparse.Namespace, out: Path, summary: dict) -> int:
    """The default: this process alone runs the study in `out/study.db`."""
    from autotune.search.resume import RunFolderBusy, RunLock, requeue_interrupted

    start_process(space, space.train.threads)
    if args.resume and not (out / STUDY_DB).is_file():
        raise UsageError(f"--resume: no study to continue in {out} (no {STUDY_DB})")
    out.mkdir(parents=True, exist_ok=True)
    where = Where(f"sqlite:///{out / STUDY_DB}", space.name, "", lambda study: None)
    try:
        with RunLock(out):
            return run_study_in(space, args, out, where, requeue_interrupted, summary)
    except RunFolderBusy as error:
        raise UsageError(str(error)) from None


def run_worker(
    space: Space, args: argparse.Namespace, out: Path, spec: StorageSpec, summary: dict
) -> int:
    """One worker of the study in `spec`, alone or one of `--workers N` (`--worker-slot K/N`)."""
    threads = space.train.threads
    if args.worker_slot:  # started by --workers N, on the cores it was given
        threads = min(threads, len(os.sched_getaffinity(0)))
    start_process(space, threads)
    where = shared_study(space, args, spec)
    if args.resume and not study_exists(where):
        raise UsageError(f"--resume: no study {where.study_name!r} in {spec.shown()}")
    out.mkdir(parents=True, exist_ok=True)
    report = not args.worker_slot  # a worker of --workers N leaves the report to its parent
    return run_study_in(space, args, out, where, where.tidy, summary, report)


def shared_study(space: Space, args: argparse.Namespace, spec: StorageSpec) -> Where:
    """The storage of a study several workers share, with this worker's way of finding the
    trials of workers that died."""
    import optuna
    from autotune.search.resume import requeue, requeue_gone

    storage = open_storage(spec, args.heartbeat, on_stale=requeue)  # Optuna failed the trial
    name = args.study or space.name
    worker = args.worker_slot or this_worker()
    if spec.heartbeats:
        return Where(storage, name, worker, optuna.storages.fail_stale_trials)
    # Not `<journal>.lock`: Optuna's own journal lock is a symlink of that name.
    lock = Path(f"{spec.url.removeprefix('journal:')}.requeue-lock").expanduser()
    return Where(storage, name, worker, lambda study: requeue_gone(study, lock))


def study_exists(where: Where) -> bool:
    import optuna

    return where.study_name in optuna.study.get_all_study_names(where.storage)


def run_study_in(
    space: Space,
    args: argparse.Namespace,
    out: Path,
    where: Where,
    on_open: Callable,
    summary: dict,
    report: bool = True,
) -> int:
    """Open the study, run trials until its budget, and (unless `report` is False) write the run
    folder's outputs and print the summary; the exit code."""
    import optuna
    from autotune.search.json_output import json_summary
    from autotune.search.progress import Progress
    from autotune.search.study import StudyMismatch, count, open_study, prepare_run, run_study
    from autotune.search.summary import print_summary

    start = time.perf_counter()
    progress = Progress(quiet=args.quiet)
    try:
        study = open_study(
            space, args.target, where.storage, args.seed, where.study_name, where.worker
        )
    except StudyMismatch as error:
        raise UsageError(str(error)) from None
    requeued = on_open(study)
    if requeued:
        progress.note(f"trials {requeued} were interrupted: marked failed and queued again")
    run_state = prepare_run(space, args.target, out, args.cache or out / "cache", progress)
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
    if report:
        with progress.step("report"):
            outputs = write_outputs_locked(
                study, space, args.target, out, time.perf_counter() - start
            )
        summary.update(json_summary(study, space, args.target, out, outputs))
    if interrupted:
        completed = count(study, optuna.trial.TrialState.COMPLETE)
        print(
            f"autotune: interrupted; the {completed} completed trials are kept in the study; "
            "run the same command to continue",
            file=sys.stderr,
        )
        return 130
    if outputs is not None:
        print_summary(study, space, outputs)
    return finish(study, space, outcome)


def write_outputs_locked(study, space: Space, target: str, out: Path, wall_seconds: float):
    """The run folder's outputs, written by one process at a time."""
    from autotune.candidates.cache import file_lock
    from autotune.reports.outputs import write_outputs

    with file_lock(out / "outputs.lock"):
        return write_outputs(study, space, target, out, wall_seconds)


def finish(study, space: Space, outcome) -> int:
    """The exit code: 1 when the study stopped on failures or nothing completed."""
    import optuna
    from autotune.search.study import count

    stopped = outcome.stop_reason(space.strategy) if outcome is not None else None
    if stopped:
        print(f"autotune: {stopped}; see trials.csv and trials/*/error.log", file=sys.stderr)
        return 1
    if count(study, optuna.trial.TrialState.COMPLETE) == 0:
        print(
            "autotune: no trial completed; see the errors in trials.csv and trials/*/error.log",
            file=sys.stderr,
        )
        return 1
    return 0


def run_local_workers(
    space: Space,
    args: argparse.Namespace,
    argv: list[str],
    out: Path,
    spec: StorageSpec,
    summary: dict,
) -> int:
    """Start `--workers N` worker processes on this machine, wait for them, write the report."""
    from autotune.search.json_output import json_summary
    from autotune.search.progress import Progress
    from autotune.search.study import StudyMismatch, open_study, prepare_run
    from autotune.search.summary import print_summary

    start = time.perf_counter()
    gpus: list[str] = []
    if args.target == "cuda":
        gpus = visible_gpus()
        if len(gpus) < args.workers:
            raise UsageError(
                f"--workers {args.workers} on cuda needs a GPU each; {len(gpus)} visible"
            )
    start_process(space, space.train.threads)
    where = shared_study(space, args, spec)
    try:  # created (and checked against this space) once, before the workers race to it
        study = open_study(space, args.target, where.storage, args.seed, where.study_name)
    except StudyMismatch as error:
        raise UsageError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(quiet=args.quiet)
    prepare_run(space, args.target, out, args.cache or out / "cache", progress)  # the base, once
    workers = []
    for index in range(args.workers):
        env, place = dict(os.environ), Placement(index, args.workers)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = place.cuda_devices(gpus)
            pin = None
        else:  # the worker runs on its own cores, with as many OpenMP threads
            cores = place.cpu_cores(sorted(os.sched_getaffinity(0)))
            env["OMP_NUM_THREADS"] = str(min(space.train.threads, len(cores)))
            pin = functools.partial(pin_cpu, cores)
        command = [sys.executable, "-m", "autotune", *argv]
        command += ["--workers", "1", "--worker-slot", f"{index}/{args.workers}"]
        workers.append(subprocess.Popen(command, env=env, preexec_fn=pin))
    progress.note(f"started {args.workers} workers: pids {[w.pid for w in workers]}")
    try:
        codes = [w.wait() for w in workers]
    except KeyboardInterrupt:  # the workers got the same Ctrl-C from the terminal
        for worker in workers:
            worker.wait()
        return 130
    with progress.step("report"):  # `study` reads the storage: every worker's trials
        outputs = write_outputs_locked(study, space, args.target, out, time.perf_counter() - start)
    summary.update(json_summary(study, space, args.target, out, outputs))
    print_summary(study, space, outputs)
    failed = [(w.pid, code) for w, code in zip(workers, codes, strict=True) if code != 0]
    if failed:
        print(f"autotune: workers ended with errors (pid, exit code): {failed}", file=sys.stderr)
        return 1
    return finish(study, space, None)
