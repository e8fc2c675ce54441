"""How the study command runs a study, in one of three ways (commands/ways.py): in this process
on the run folder's SQLite study, as one worker of a study in a shared storage, or as N local
workers this process starts. Every way takes the same steps here, `launch`; its `Way` says what
it does differently (where the study lives, the lock, the work, who writes the report)."""

from __future__ import annotations

import json
import sys
import time
from contextlib import suppress
from pathlib import Path

import optuna

from autotune.commands.finish import confirm_front, write_outputs_locked
from autotune.commands.local_workers import LocalWorkers
from autotune.commands.options import StudyOptions
from autotune.commands.ways import ExitCode, InRunFolder, OnOpen, Way, Worker
from autotune.console.json_output import json_summary, stdout_to_stderr
from autotune.console.progress import Progress
from autotune.console.summary import print_summary
from autotune.errors import UsageError
from autotune.search.budget import planned
from autotune.search.confirm import remember_prompts
from autotune.search.reference import measure_reference
from autotune.search.run import Run, prepare_run
from autotune.search.study import count, open_study
from autotune.search.workers import Where, parse_storage
from autotune.spaces import Space
from autotune.startup import start_process


def run(space: Space, options: StudyOptions) -> int:
    """The study as the command line asks; with --json, its summary is all stdout gets."""
    if not options.json or options.worker_slot:
        return launch(space, options, {})
    summary: dict = {}
    with stdout_to_stderr():  # libraries (and the summary table) write to stdout too
        code = launch(space, options, summary)
    print(json.dumps({**summary, "exit_code": code}, indent=2))
    return code


def way_for(space: Space, options: StudyOptions, folder: Path) -> Way:
    """The way the options ask for; UsageError for a worker count no storage can share."""
    if options.workers < 1:
        raise UsageError("--workers must be at least 1")
    if options.storage is None:
        if options.workers > 1:
            raise UsageError(
                f"--workers {options.workers} needs a storage the workers share: "
                f"--storage journal:{folder / 'study.journal'} (this machine) or "
                "--storage postgresql://USER@HOST/DB (several machines)"
            )
        return InRunFolder(space, options, folder)
    spec = parse_storage(options.storage)
    if options.workers > 1:
        return LocalWorkers(space, options, folder, spec)
    return Worker(space, options, folder, spec)


def launch(space: Space, options: StudyOptions, summary: dict) -> int:
    """Check everything a study needs before it exists, then run it; `summary` receives what
    --json prints. The exit code."""
    folder = options.folder
    space, plan = planned(space)  # the budget cut to the space's configurations, halving off
    way = way_for(space, options, folder)
    start = time.perf_counter()
    start_process(way.threads)
    where, on_open = way.open()
    if options.resume and (missing := way.missing(where)):
        raise UsageError(f"--resume: {missing}")
    if folder.is_dir():  # refuse a second process on the folder before any work
        with way.lock():
            pass
    progress = Progress(quiet=options.quiet)
    if not options.worker_slot:  # said once, not by each worker
        for note in plan.notes:
            progress.note(note)
    prepared = prepare_run(space, options.target, folder, options.cache_in(folder), progress)
    folder.mkdir(parents=True, exist_ok=True)
    with way.lock():
        return run_study_in(prepared, progress, way, where, on_open, summary, start)


def run_study_in(
    run: Run,
    progress: Progress,
    way: Way,
    where: Where,
    on_open: OnOpen,
    summary: dict,
    start: float,
) -> int:
    """Open the study (only now that its inputs passed every check), measure the untrained base,
    do the way's work, and (if the way reports) write the run folder's outputs and print the
    summary; the exit code, 130 after a Ctrl-C. `start` is when the command began."""
    space, target, out = run.space, run.target, run.out
    seed = way.options.seed
    study = open_study(
        space, target, where.storage, seed, where.study_name, where.worker, queue_all=True
    )
    requeued = on_open(study)
    if requeued:
        progress.note(f"trials {requeued} were interrupted: marked failed and queued again")
    measure_reference(run, study)
    remember_prompts(study, [e.prompt for e in run.dataset.eval], space)
    exit_code: ExitCode | None = None  # stays None after a Ctrl-C
    with suppress(KeyboardInterrupt):
        exit_code = way.work(run, study, where, progress)
    outputs = None
    if way.reports:
        # the search decides (the confirmation round, the pick); after a Ctrl-C, from what the
        # study holds, without a round
        decision = confirm_front(run, study, progress) if exit_code is not None else None
        with progress.step("report"):
            wall = time.perf_counter() - start
            outputs = write_outputs_locked(study, space, target, out, wall, decision)
        summary.update(json_summary(space, target, out, outputs))
    if exit_code is None:
        completed = count(study, optuna.trial.TrialState.COMPLETE)
        print(
            f"autotune: interrupted; the {completed} completed trials are kept in the study; "
            "run the same command to continue",
            file=sys.stderr,
        )
        return 130
    if outputs is not None:
        print_summary(space, outputs)
    return exit_code()
