"""Continuing a study after a crash: one process per run folder, interrupted trials run again.

A process killed mid-trial leaves that trial RUNNING in the study. When the same command runs
again, the trial is marked FAIL (its reason says it was interrupted) and its parameters are queued
again, so the study ends with the number of completed trials it was asked for. A retry is queued
behind the trials already waiting (the siblings the interrupted trial queued, say); when the
budget is reached first it stays queued for a later run.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import optuna

INTERRUPTED = "interrupted: the process running this trial stopped before it finished"


class RunFolderBusy(Exception):
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


def requeue_interrupted(study: optuna.Study) -> list[int]:
    """Mark the study's RUNNING trials failed and queue their parameters again; their numbers.

    Only safe while no other process runs trials of this study (see RunLock).
    """
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    storage = study._storage  # the public API cannot end another process's trial
    for trial in running:
        storage.set_trial_user_attr(trial._trial_id, "error", INTERRUPTED)
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        attrs = {"retry_of": trial.number}
        if "sibling_of" in trial.user_attrs:
            attrs["sibling_of"] = trial.user_attrs["sibling_of"]
        study.enqueue_trial(trial.params, user_attrs=attrs)
    return [t.number for t in running]
