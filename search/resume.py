"""Continuing a study after a crash: one process per run folder, interrupted trials run again.

A process killed mid-trial leaves that trial RUNNING in the study. When the same command runs
again, the trial is marked FAIL (its reason says it was interrupted) and its parameters are queued
again, so the study ends with the number of completed trials it was asked for.
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
    """An exclusive lock on a run folder for the life of the process (released by the OS)."""

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
