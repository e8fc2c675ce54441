"""Continuing a study after a crash: interrupted trials fail and run again.

A process killed mid-trial leaves that trial RUNNING in the study. Its parameters are queued again
once that is known, so the study ends with the number of completed trials it was asked for:
- one process per run folder (the default SQLite study, under RunLock): when the same command
  runs again, every RUNNING trial was interrupted (`requeue_interrupted`);
- workers sharing a study: an RDB storage's heartbeats tell when a worker stopped (Optuna fails
  the trial, `requeue` queues it again); a journal storage's workers check whether the process
  that runs a trial on this machine still exists (`requeue_gone`).

A retry is queued behind the trials already waiting (the siblings the interrupted trial queued,
say); when the budget is reached first it stays queued for a later run. A configuration that
kills its process every time (out of memory, say) is run again at most `strategy.max_retries`
times; then it stays failed, "gave up after N retries".
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import optuna

from autotune.candidates.cache import file_lock
from autotune.errors import UsageError
from autotune.search.record import GAVE_UP, STALE, Attr
from autotune.search.workers.identity import is_gone

INTERRUPTED = "interrupted: the process running this trial stopped before it finished"
WORKER_GONE = "interrupted: the worker running this trial is gone (killed or crashed)"


class RunFolderBusy(UsageError):
    """Another autotune process is running a study in this run folder."""


class RunLock:
    """An exclusive lock on a run folder, held inside a `with` block (or until the process ends:
    the OS releases it then, even after kill -9)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "autotune.lock"
        self._handle = None

    def acquire(self) -> RunLock:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderBusy(
                f"{self.path.parent} is in use by another autotune process (pid {owner}); wait "
                "for it, or use another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def requeue_interrupted(study: optuna.Study, max_retries: int) -> list[int]:
    """Mark the study's RUNNING trials failed and queue their parameters again; their numbers.

    Only safe while no other process runs trials of this study (see RunLock).
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return [t.number for t in running if fail_and_requeue(study, t, INTERRUPTED, max_retries)]


def requeue_gone(study: optuna.Study, lock_path: Path, max_retries: int) -> list[int]:
    """Fail and queue again the RUNNING trials whose worker ran on this machine and is gone.

    For storages without heartbeats (journal); `lock_path` serialises the workers of this
    machine, so a dead worker's trial is queued again once."""
    with file_lock(lock_path):
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        gone = [t for t in running if is_gone(t.user_attrs.get(Attr.WORKER, ""))]
        return [t.number for t in gone if fail_and_requeue(study, t, WORKER_GONE, max_retries)]


def fail_and_requeue(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, reason: str, max_retries: int
) -> bool:
    """Fail a RUNNING trial with `reason` and queue its parameters again (unless it was retried
    `max_retries` times already); False if it had finished meanwhile."""
    storage = study._storage  # the public API cannot end another process's trial
    retries = trial.user_attrs.get(Attr.RETRIES, 0)
    give_up = retries >= max_retries
    if give_up:
        reason = GAVE_UP.format(retries=retries, reason=reason)
    try:
        storage.set_trial_user_attr(trial._trial_id, Attr.ERROR, reason)
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if not give_up:
        requeue(study, trial, max_retries)
    return True


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, max_retries: int) -> None:
    """Queue `trial`'s parameters again, remembering what it retries (and whose sibling it is).

    Also Optuna's callback for a trial it failed by heartbeat: after `max_retries` retries of one
    configuration it gives up, and notes why in the study (the failed trial takes no more
    attributes)."""
    retries = trial.user_attrs.get(Attr.RETRIES, 0)
    if retries >= max_retries:
        note = GAVE_UP.format(retries=retries, reason=STALE)
        study.set_user_attr(f"{Attr.GAVE_UP}:{trial.number}", note)
        return
    attrs = {Attr.RETRY_OF: trial.number, Attr.RETRIES: retries + 1}
    if Attr.SIBLING_OF in trial.user_attrs:
        attrs[Attr.SIBLING_OF] = trial.user_attrs[Attr.SIBLING_OF]
    study.enqueue_trial(trial.params, user_attrs=attrs)
