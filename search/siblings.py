"""Precision siblings: the trials that reuse a newly trained adapter with other export settings.

When a trial trains a new adapter, the study queues one trial per other combination of the
expanded export knobs (by default every export knob the space searches: precision, the int4
options of an int4 export, shared embeddings, the pruned LM head). They keep the training
parameters, so their adapter and merged model come from the stage cache and only the export and
the measurements run. They are queued once the training has finished, and are never judged on it
again (search/stages.py).
"""

from __future__ import annotations

import itertools
from typing import Any

import optuna

from autotune.search.record import Attr
from autotune.spaces import Choices, Space
from autotune.spaces.knobs import EXPORT_KNOBS, INT4_KNOBS


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

    others = [k for k in EXPORT_KNOBS if k != "precision" and k in space.search]
    combinations = []
    for precision in values("precision"):
        names = [k for k in others if precision == "int4" or k not in INT4_KNOBS]
        for chosen in itertools.product(*(values(k) for k in names)):
            combination = {"precision": precision, **dict(zip(names, chosen, strict=True))}
            combinations.append({k: v for k, v in combination.items() if v is not None})
    return combinations


def sibling_params(space: Space, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The parameters of each sibling of a trial: its own with another export setting."""
    training = {k: v for k, v in params.items() if k not in EXPORT_KNOBS}
    own = {k: params[k] for k in EXPORT_KNOBS if k in params}
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
