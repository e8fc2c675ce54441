"""Early stop of hopeless training (Optuna cannot prune multi-objective studies by itself).

During training the eval loss is taken at a few checkpoints. From checkpoint `prune_from` on, a
training whose loss is worse than the median of earlier trainings at the same checkpoint is
stopped and its trial recorded as PRUNED with the reason, once `prune_after` trainings have
completed. The first checkpoint is not judged by default: that early, the loss of a good training
is often still above that of a bad one.

A training configuration judged once keeps its verdict: one that completed is never pruned later
(its siblings and repeats reuse it), and one that was pruned is pruned again at once, without
training, when the sampler proposes it again.
"""

from __future__ import annotations

import statistics

import optuna

from autotune.search.record import Attr


def _trials(study: optuna.Study, state: optuna.trial.TrialState) -> list:
    return study.get_trials(deepcopy=False, states=(state,))


def earlier_losses(study: optuna.Study, checkpoint: int, exclude: str = "") -> list[float]:
    """Eval losses at `checkpoint` of the completed trials' distinct adapters (but `exclude`)."""
    by_adapter: dict[str, float] = {}
    for trial in _trials(study, optuna.trial.TrialState.COMPLETE):
        losses = trial.user_attrs.get(Attr.CHECKPOINT_LOSSES) or []
        key = trial.user_attrs.get(Attr.ADAPTER_KEY, str(trial.number))
        if checkpoint < len(losses) and key != exclude:
            by_adapter[key] = losses[checkpoint]
    return list(by_adapter.values())


def earlier_verdict(study: optuna.Study, adapter_key: str) -> str | None:
    """'complete' when a trial with this adapter completed (or was measured and lost the race),
    else the reason one was pruned."""
    for trial in _trials(study, optuna.trial.TrialState.COMPLETE):
        if trial.user_attrs.get(Attr.ADAPTER_KEY) == adapter_key:
            return "complete"
    pruned = [
        trial
        for trial in _trials(study, optuna.trial.TrialState.PRUNED)
        if trial.user_attrs.get(Attr.ADAPTER_KEY) == adapter_key
    ]
    if any(Attr.RACED in trial.user_attrs for trial in pruned):
        return "complete"  # its training finished; only its export lost the race
    if pruned:
        return f"as trial {pruned[0].number}: {pruned[0].user_attrs.get(Attr.PRUNED, '')}"
    return None


class MedianRule:
    """Called with (checkpoint index, eval loss) during one training; raises optuna.TrialPruned
    when the training is hopeless. The losses seen so far stay on the trial."""

    def __init__(
        self,
        trial: optuna.Trial,
        adapter_key: str,
        checkpoints: int,
        prune_after: int,
        prune_from: int = 2,
    ):
        self.trial, self.adapter_key = trial, adapter_key
        self.checkpoints, self.prune_after, self.prune_from = checkpoints, prune_after, prune_from
        self.losses: list[float] = []

    def __call__(self, checkpoint: int, loss: float) -> None:
        self.losses.append(loss)
        self.trial.set_user_attr(Attr.CHECKPOINT_LOSSES, list(self.losses))
        if checkpoint + 1 < self.prune_from:
            return
        earlier = earlier_losses(self.trial.study, checkpoint, exclude=self.adapter_key)
        if len(earlier) < self.prune_after:
            return
        median = statistics.median(earlier)
        if loss > median:
            raise optuna.TrialPruned(
                f"eval loss {loss:.4f} at checkpoint {checkpoint + 1} of {self.checkpoints} is "
                f"worse than the median {median:.4f} of {len(earlier)} earlier trainings"
            )
