"""`--workers N`: this process prepares the study and the base model, starts N worker processes
on this machine (each on its own GPU or its own CPU cores), waits for them, and writes the
report from the whole study. Each worker is `python -m autotune` with the same command line and
`--workers 1 --worker-slot K/N`, as a worker joining from another machine would be."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import optuna

from autotune.commands.finish import finish
from autotune.commands.options import StudyOptions
from autotune.commands.ways import ExitCode, Worker
from autotune.console.progress import Progress
from autotune.errors import UsageError
from autotune.search.run import Run
from autotune.search.workers import Placement, StorageSpec, Where, pin_cpu, visible_gpus
from autotune.spaces import Space


class LocalWorkers(Worker):
    """The study in a shared storage, run by N worker processes this one starts and waits for."""

    def __init__(self, space: Space, options: StudyOptions, folder: Path, spec: StorageSpec):
        super().__init__(space, options, folder, spec)
        self.gpus: list[str] = []
        if options.target == "cuda":
            self.gpus = visible_gpus()
            if len(self.gpus) < options.workers:
                raise UsageError(
                    f"--workers {options.workers} on cuda needs a GPU each; "
                    f"{len(self.gpus)} visible"
                )

    @property
    def reports(self) -> bool:
        return True  # once every worker ended, from the whole study

    def work(self, run: Run, study: optuna.Study, where: Where, progress: Progress) -> ExitCode:
        """Start the workers and wait for them; a Ctrl-C (which the workers got too) waits for
        every one of them to stop before it goes on."""
        workers = [self.start(index) for index in range(self.options.workers)]
        progress.note(f"started {len(workers)} workers: pids {[w.pid for w in workers]}")
        try:
            codes = [w.wait() for w in workers]
        except KeyboardInterrupt:
            for worker in workers:
                worker.wait()
            raise
        failed = [(w.pid, code) for w, code in zip(workers, codes, strict=True) if code != 0]
        return functools.partial(exit_code, study, self.space, failed)

    def start(self, index: int) -> subprocess.Popen:
        """Worker `index`, on its own GPU, or on its own cores with as many OpenMP threads."""
        count = self.options.workers
        env, place = dict(os.environ), Placement(index, count)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = place.cuda_devices(self.gpus)
            pin = None
        else:
            cores = place.cpu_cores(sorted(os.sched_getaffinity(0)))
            env["OMP_NUM_THREADS"] = str(min(self.space.train.threads, len(cores)))
            pin = functools.partial(pin_cpu, cores)
        command = [sys.executable, "-m", "autotune", *self.options.argv]
        command += ["--workers", "1", "--worker-slot", f"{index}/{count}"]
        return subprocess.Popen(command, env=env, preexec_fn=pin)


def exit_code(study: optuna.Study, space: Space, failed: list[tuple[int, int]]) -> int:
    """1 when a worker ended with an error (each named); else the study's own exit code."""
    if failed:
        print(f"autotune: workers ended with errors (pid, exit code): {failed}", file=sys.stderr)
        return 1
    return finish(study, space, None)
