"""The ways a process takes part in a study, and what each does its own way; the steps they share
are commands/run.py's `launch`.

- `InRunFolder` (the default): the run folder's SQLite study, which this process alone holds
  (RunLock); trials a killed run left RUNNING are run again.
- `Worker` (`--storage URL`): one of any number of processes, on any machines, that share the
  study; the trials of a worker that died are failed and run again (heartbeats, or a process
  check on this machine). A worker that `--workers N` started leaves the report to its parent.
- `LocalWorkers` (`--workers N`, commands/local_workers.py): starts N such workers on this
  machine, waits for them, and writes the report.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import optuna

from autotune.commands.finish import finish
from autotune.commands.options import StudyOptions
from autotune.console.progress import Progress
from autotune.search.run import Run
from autotune.search.study import count, run_study
from autotune.search.workers import (
    STUDY_DB,
    RunLock,
    StorageSpec,
    Where,
    run_folder_study,
    shared_study,
)
from autotune.spaces import Space
from autotune.startup import worker_threads

# What a process does on opening the study: the trials of dead processes queued again (numbers).
OnOpen = Callable[[optuna.Study], object]
# The exit code, asked once the report is written.
ExitCode = Callable[[], int]


class Way(ABC):
    """A way of running the study in processes; the default pieces are a process that runs
    trials itself and writes the report."""

    def __init__(self, space: Space, options: StudyOptions, folder: Path):
        self.space, self.options, self.folder = space, options, folder

    @property
    def threads(self) -> int:
        """Torch threads of this process."""
        return self.space.train.threads

    @property
    def reports(self) -> bool:
        """Whether this process writes the run folder's report and prints the summary."""
        return True

    @abstractmethod
    def open(self) -> tuple[Where, OnOpen]:
        """Where the study lives, and what this process does on opening it."""

    @abstractmethod
    def missing(self, where: Where) -> str | None:
        """For --resume: why there is no study to continue; None when there is one."""

    def lock(self) -> AbstractContextManager:
        """Held from the study's opening to the end of the command."""
        return nullcontext()

    def work(self, run: Run, study: optuna.Study, where: Where, progress: Progress) -> ExitCode:
        """Trials in this process until the study holds the budget of completed trials."""
        space = self.space
        completed = count(study, optuna.trial.TrialState.COMPLETE)
        progress.note(
            f"study {where.study_name} ({space.strategy.sampler}): {space.budget.trials} completed "
            f"trials wanted, {completed} so far; run folder {self.folder}"
            + (f"; worker {where.worker}" if where.worker else "")
        )
        with progress.study(space.budget.trials, completed):
            outcome = run_study(
                run, study, space.budget.trials, space.budget.timeout, lambda: where.tidy(study)
            )
        return functools.partial(finish, study, space, outcome)


class InRunFolder(Way):
    """The default: this process alone runs the study in the run folder's `study.db`."""

    def open(self) -> tuple[Where, OnOpen]:
        return run_folder_study(self.space, self.folder)

    def missing(self, where: Where) -> str | None:
        if (self.folder / STUDY_DB).is_file():
            return None
        return f"no study to continue in {self.folder} (no {STUDY_DB})"

    def lock(self) -> AbstractContextManager:
        return RunLock(self.folder)


class Worker(Way):
    """One worker of the study in a storage that workers share, alone or one of `--workers N`
    (`--worker-slot K/N`)."""

    def __init__(self, space: Space, options: StudyOptions, folder: Path, spec: StorageSpec):
        super().__init__(space, options, folder)
        self.spec = spec

    @property
    def threads(self) -> int:
        return worker_threads(self.space, self.options.worker_slot)

    @property
    def reports(self) -> bool:
        return not self.options.worker_slot  # a worker of --workers N leaves it to its parent

    def open(self) -> tuple[Where, OnOpen]:
        options = self.options
        where = shared_study(
            self.space, self.spec, options.heartbeat, options.study, options.worker_slot or ""
        )
        return where, where.tidy

    def missing(self, where: Where) -> str | None:
        if where.exists():
            return None
        return f"no study {where.study_name!r} in {self.spec.shown()}"
