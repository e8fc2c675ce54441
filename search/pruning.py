"""Early stop of hopeless training (Optuna cannot prune multi-objective studies by itself).

During training the eval loss is taken at a few checkpoints. A training whose loss at a
checkpoint is worse than the median of the earlier trainings at the same checkpoint is stopped and
its trial recorded as PRUNED with the reason, once enough trainings have completed to compare.
"""

from __future__ import annotations

import statistics

import optuna

CHECKPOINT_LOSSES = "checkpoint_losses"  # trial user attribute: eval loss at each checkpoint
ADAPTER_KEY = "adapter_key"  # trial user attribute: which adapter a trial used


def earlier_losses(study: optuna.Study, checkpoint: int) -> list[float]:
    """Eval losses at `checkpoint` of the completed trials' distinct adapters."""
    by_adapter: dict[str, float] = {}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    for trial in complete:
        losses = trial.user_attrs.get(CHECKPOINT_LOSSES) or []
        if checkpoint < len(losses):
            by_adapter[trial.user_attrs.get(ADAPTER_KEY, str(trial.number))] = losses[checkpoint]
    return list(by_adapter.values())


class MedianRule:
    """Called with (checkpoint index, eval loss); raises optuna.TrialPruned when hopeless."""

    def __init__(self, study: optuna.Study, checkpoints: int, prune_after: int):
        self.study, self.checkpoints, self.prune_after = study, checkpoints, prune_after

    def __call__(self, checkpoint: int, loss: float) -> None:
        earlier = earlier_losses(self.study, checkpoint)
        if len(earlier) < self.prune_after:
            return
        median = statistics.median(earlier)
        if loss > median:
            raise optuna.TrialPruned(
                f"eval loss {loss:.4f} at checkpoint {checkpoint + 1} of {self.checkpoints} is "
                f"worse than the median {median:.4f} of {len(earlier)} earlier trainings"
            )
