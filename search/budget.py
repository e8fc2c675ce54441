"""The study's budget, counted over every worker: exactly `trials` completed trials in the study.

A configuration the sampler proposes again once a trial of it completed is not run again
(`repeat_of`): in a small finite space TPE proposes its best points over and over, and those
repeats, free from the cache, would fill the budget without teaching anything. Queued trials
(siblings, retries, promotions) are never repeats.

A worker starts a trial only while the completed trials and those running elsewhere leave room
for it (`wait_for_room`); when two workers start one at the same moment and only one fits, the
trial with the higher number yields (`surplus`): trial numbers are handed out by the storage, so
every worker agrees on the order. A running trial may still fail, so a worker that finds no room
waits for the running ones to end rather than stopping at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna

State = optuna.trial.TrialState
POLL_S = 1.0
SURPLUS = "not run: the study's budget was reached by trials of other workers"


def repeat_of(trial: optuna.Trial) -> int | None:
    """The completed trial whose parameters the sampler proposed again for `trial`, if any."""
    if trial.storage.get_trial_system_attrs(trial._trial_id).get("fixed_params") is not None:
        return None  # queued on purpose
    for other in trial.study.get_trials(deepcopy=False, states=(State.COMPLETE,)):
        if other.params == trial.params:
            return other.number
    return None


def _counts(study: optuna.Study, before: int | None = None) -> tuple[int, int]:
    """Completed trials, and running trials (those numbered below `before`, if given)."""
    trials = study.get_trials(deepcopy=False, states=(State.COMPLETE, State.RUNNING))
    completed = sum(t.state == State.COMPLETE for t in trials)
    running = sum(
        t.state == State.RUNNING and (before is None or t.number < before) for t in trials
    )
    return completed, running


def wait_for_room(
    study: optuna.Study, trials: int, tidy: Callable[[], None], before: int | None = None
) -> bool:
    """Whether a trial may run: True once the completed and running trials (those numbered
    below `before`, if given) leave room under `trials`; False once the completed trials reach
    it. `tidy` runs between polls: it fails the trials of workers that died, which frees room."""
    while True:
        completed, running = _counts(study, before)
        if completed >= trials:
            return False
        if completed + running < trials:
            return True
        tidy()
        time.sleep(POLL_S)
