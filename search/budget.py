"""The study's budget in the storage (the rules: decisions/budget.py): the space's plan applied
(the budget cut to its distinct configurations, halving off where it ranks nothing), every
configuration queued once in an exhaustive study, repeats not run, and a worker starts a trial
only while the budget, counted over every worker, has room for it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import optuna

from autotune.decisions import budget
from autotune.decisions.budget import Plan, every_configuration, plan_for
from autotune.search.record import read_trials
from autotune.search.siblings import sibling_params
from autotune.search.workers.trial_access import queued_params
from autotune.spaces import Space

State = optuna.trial.TrialState
POLL_S = 1.0
SURPLUS = "not run: the study's budget was reached by trials of other workers"


def planned(space: Space) -> tuple[Space, Plan]:
    """The space as its study runs it (decisions/budget.py `plan_for`): the budget cut to the
    distinct configurations, successive halving and the median rule off where they can stop
    nothing; and the plan, whose notes say what changed. The study's identity (the space hash)
    leaves the budget and the strategy out: a planned space joins the same study."""
    plan, fidelity = plan_for(space), space.strategy.fidelity
    # the median rule judges only without halving: never switched on where halving goes off
    stays = plan.median if fidelity is None else plan.halving
    strategy = space.strategy.model_copy(
        update={
            "fidelity": fidelity if plan.halving else None,
            "prune": space.strategy.prune and stays,
        }
    )
    budget_section = space.budget.model_copy(update={"trials": plan.trials})
    return space.model_copy(update={"budget": budget_section, "strategy": strategy}), plan


def leaders(space: Space) -> list[dict[str, Any]]:
    """The configurations an exhaustive study queues: one per training (and per setting of the
    export knobs siblings do not vary); the precision siblings each one queues once its training
    has finished (search/siblings.py) are the rest."""
    found: list[dict[str, Any]] = []
    covered: list[dict[str, Any]] = []
    for params in every_configuration(space):
        if params not in covered:
            found.append(params)
            covered += [params, *sibling_params(space, params)]
    return found


def untaken(study: optuna.Study, configurations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those of `configurations` no trial of the study has taken (in any state)."""
    taken = [t.system_attrs.get("fixed_params", t.params) for t in study.get_trials(deepcopy=False)]
    return [params for params in configurations if params not in taken]


def queue_every_configuration(study: optuna.Study, space: Space) -> int:
    """Queue the leader of each training of an exhaustive study that no trial has taken yet
    (its siblings follow it): the sampler is never asked, so it proposes no repeat. How many
    were queued."""
    queued = untaken(study, leaders(space))
    for params in queued:
        study.enqueue_trial(params)
    return len(queued)


def all_run(study: optuna.Study, space: Space) -> bool:
    """Whether an exhaustive study has run every configuration: each training's leader has a
    trial and nothing is queued any more. One stopped by racing, or failed, is not proposed
    again: a sampler would only repeat the others. (A study made before its queue was has
    leaders untaken: the sampler goes on.)"""
    if not plan_for(space).exhaustive:
        return False
    waiting = study.get_trials(deepcopy=False, states=(State.WAITING,))
    return not waiting and not untaken(study, leaders(space))


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
