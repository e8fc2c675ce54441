"""Precision siblings: the trials that reuse a newly trained adapter with other export settings.

When a trial trains a new adapter, the study queues one trial per other combination of the
expanded export knobs (by default every precision and int4 option the space searches). They keep
the training parameters, so their adapter and merged model come from the stage cache and only the
export and the measurements run.
"""

from __future__ import annotations

import itertools
from typing import Any

import optuna

from autotune.search.record import Attr
from autotune.spaces import Choices, Space
from autotune.spaces.knobs import INT4_KNOBS


def export_combinations(space: Space, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every export setting a sibling of a trial with `params` may take (its own included).

    A knob that is expanded takes each of its choices; one that is not keeps the trial's value
    (or, absent from the trial, is left to the sampler). The int4 knobs exist only for int4.
    """
    expanded = set(space.expanded_knobs())

    def values(name: str) -> list[Any]:
        knob = space.search.get(name)
        if name in expanded and isinstance(knob, Choices):
            return list(knob.choices)
        return [params[name]] if name in params else [None]

    combinations = []
    for precision in values("precision"):
        int4 = [values(k) for k in INT4_KNOBS if k in space.search] if precision == "int4" else []
        names = [k for k in INT4_KNOBS if k in space.search] if precision == "int4" else []
        for chosen in itertools.product(*int4):
            combination = {"precision": precision, **dict(zip(names, chosen, strict=True))}
            combinations.append({k: v for k, v in combination.items() if v is not None})
    return combinations


def sibling_params(space: Space, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters of each sibling of a trial: its own with another export setting."""
    training = {k: v for k, v in params.items() if k != "precision" and k not in INT4_KNOBS}
    own = {k: params[k] for k in ("precision", *INT4_KNOBS) if k in params}
    return [{**training, **c} for c in export_combinations(space, params) if c != own]


def enqueue_siblings(study: optuna.Study, space: Space, trial: optuna.Trial) -> int:
    """Queue the siblings of `trial` but those already queued, running or completed (a pruned
    trial with a sibling's parameters, paused before its training finished, is no sibling);
    how many were queued."""
    State = optuna.trial.TrialState
    taken = [
        t.system_attrs.get("fixed_params", t.params)
        for t in study.get_trials(
            deepcopy=False, states=(State.COMPLETE, State.WAITING, State.RUNNING)
        )
    ]
    siblings = [params for params in sibling_params(space, trial.params) if params not in taken]
    for params in siblings:
        study.enqueue_trial(params, user_attrs={Attr.SIBLING_OF: trial.number})
    return len(siblings)
