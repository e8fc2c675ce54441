"""`--workers N`: this process prepares the study and the base model, starts N worker processes
on this machine (each on its own GPU or its own CPU cores), waits for them, and writes the
report from the whole study."""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import time
from pathlib import Path

from autotune.commands.finish import confirm_front, finish, write_outputs_locked
from autotune.console.json_output import json_summary
from autotune.console.progress import Progress
from autotune.console.summary import print_summary
from autotune.errors import UsageError
from autotune.search.confirm import remember_prompts
from autotune.search.reference import measure_reference
from autotune.search.run import prepare_run
from autotune.search.study import open_study
from autotune.search.workers import Placement, StorageSpec, pin_cpu, shared_study, visible_gpus
from autotune.spaces import Space
from autotune.startup import start_process


def run_local_workers(
    space: Space,
    args: argparse.Namespace,
    argv: list[str],
    out: Path,
    spec: StorageSpec,
    summary: dict,
) -> int:
    """Start `--workers N` worker processes on this machine, wait for them, write the report."""
    start = time.perf_counter()
    gpus: list[str] = []
    if args.target == "cuda":
        gpus = visible_gpus()
        if len(gpus) < args.workers:
            raise UsageError(
                f"--workers {args.workers} on cuda needs a GPU each; {len(gpus)} visible"
            )
    start_process(space.train.threads)
    progress = Progress(quiet=args.quiet)
    # The inputs checked and the base built once, before the study exists and the workers start.
    prepared = prepare_run(space, args.target, out, args.cache or out / "cache", progress)
    where = shared_study(space, spec, args.heartbeat, args.study)
    # Created (and checked against this space) once, before the workers race to it.
    study = open_study(space, args.target, where.storage, args.seed, where.study_name)
    out.mkdir(parents=True, exist_ok=True)
    measure_reference(prepared, study)
    remember_prompts(study, [e.prompt for e in prepared.dataset.eval], prepared.space)
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
    confirm_front(prepared, study, progress)  # every worker's trials, from the storage
    with progress.step("report"):
        outputs = write_outputs_locked(study, space, args.target, out, time.perf_counter() - start)
    summary.update(json_summary(space, args.target, out, outputs))
    print_summary(space, outputs)
    failed = [(w.pid, code) for w, code in zip(workers, codes, strict=True) if code != 0]
    if failed:
        print(f"autotune: workers ended with errors (pid, exit code): {failed}", file=sys.stderr)
        return 1
    return finish(study, space, None)
