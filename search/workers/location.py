"""Where a study lives and how this process shares it: the storage, the study's name, this
worker's name (for its sampler seed) and how it finds the trials of workers that died."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from autotune.search.workers.identity import this_worker
from autotune.search.workers.recovery import requeue, requeue_gone, requeue_interrupted
from autotune.search.workers.storage import StorageSpec, open_storage
from autotune.spaces import Space

STUDY_DB = "study.db"


@dataclass
class Where:
    """Where the study lives, and how this process shares it."""

    storage: Any  # an Optuna storage, or a URL Optuna opens itself
    study_name: str
    worker: str  # "" for the only process of a run folder; else this worker, for its seed
    # tidy(study) fails and queues again the trials of dead workers; the numbers it queued.
    tidy: Callable[[optuna.Study], object]

    def exists(self) -> bool:
        return self.study_name in optuna.study.get_all_study_names(self.storage)


def run_folder_study(space: Space, out: Path) -> tuple[Where, Callable[[optuna.Study], list]]:
    """The default: the run folder's SQLite study, which this process alone runs (under
    RunLock), and what it does on opening it: every RUNNING trial there was interrupted."""
    where = Where(f"sqlite:///{out / STUDY_DB}", space.name, "", lambda study: None)
    on_open = functools.partial(requeue_interrupted, max_retries=space.strategy.max_retries)
    return where, on_open


def shared_study(
    space: Space, spec: StorageSpec, heartbeat_s: int, study_name: str | None, worker: str = ""
) -> Where:
    """The storage of a study several workers share, with this worker's way of finding the
    trials of workers that died: heartbeats (RDB storages: Optuna fails the stale trial and
    `requeue` queues it again) or a process check on this machine (journal)."""
    retries = space.strategy.max_retries
    on_stale = functools.partial(requeue, max_retries=retries)
    storage = open_storage(spec, heartbeat_s, on_stale=on_stale)
    name = study_name or space.name
    worker = worker or this_worker()
    if spec.heartbeats:
        return Where(storage, name, worker, optuna.storages.fail_stale_trials)
    # Not `<journal>.lock`: Optuna's own journal lock is a symlink of that name.
    lock = Path(f"{spec.journal_path}.requeue-lock")
    return Where(storage, name, worker, lambda study: requeue_gone(study, lock, retries))
