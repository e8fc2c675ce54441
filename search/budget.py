"""The study's budget in the storage (the rules: decisions/budget.py): repeats are not run, and
a worker starts a trial only while the budget, counted over every worker, has room for it."""

from __future__ import annotations

import time
from collections.abc import Callable

import optuna

from autotune.decisions import budget
from autotune.search.record import read_trials
from autotune.search.workers.trial_access import queued_params

State = optuna.trial.TrialState
POLL_S = 1.0
SURPLUS = "not run: the study's budget was reached by trials of other workers"


def repeat_of(trial: optuna.Trial) -> int | None:
    """The completed trial whose parameters the sampler proposed again for `trial`, if any;
    None for a trial queued on purpose."""
    if queued_params(trial) is not None:
        return None
    return budget.repeat_of(trial.params, read_trials(trial.study))


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
        if budget.budget_reached(completed, trials):
            return False
        if budget.room_for_one(completed, running, trials):
            return True
        tidy()
        time.sleep(POLL_S)
