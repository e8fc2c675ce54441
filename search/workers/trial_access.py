"""The two reads of a trial's storage Optuna's public API does not offer, kept in one place.

- whether a running trial was taken from the queue (`Study.enqueue_trial`: a sibling, retry or
  promotion) rather than sampled: its `fixed_params` system attribute;
- one stored trial by number, without copying the whole study (`Study.get_trials` reads all).
Both go through the study's storage by its private ids: Optuna's `Trial` does not expose its
system attributes, nor `Study` a read of one trial.
"""

from __future__ import annotations

from typing import Any

import optuna

from autotune.search.record import FIXED_PARAMS


def queued_params(trial: optuna.Trial) -> dict[str, Any] | None:
    """The parameters `trial` was queued with, or None when the sampler proposed them."""
    return trial.storage.get_trial_system_attrs(trial._trial_id).get(FIXED_PARAMS)


def stored_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """Trial `number` of `study`, read alone."""
    storage = study._storage
    return storage.get_trial(
        storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    )
