"""Early stop of hopeless training by the median rule (decisions/median.py), in the study.

During training the eval loss is taken at a few checkpoints. From checkpoint `prune_from` on, a
training whose loss is worse than the median of earlier trainings at the same checkpoint is
stopped and its trial recorded as PRUNED with the reason, once `prune_after` trainings have
completed. The first checkpoint is not judged by default: that early, the loss of a good training
is often still above that of a bad one.
"""

from __future__ import annotations

import optuna

from autotune.decisions import median
from autotune.decisions.record import Verdict
from autotune.search.record import Attr, Stopped, read_trials


def earlier_losses(study: optuna.Study, checkpoint: int, exclude: str = "") -> list[float]:
    """Eval losses at `checkpoint` of the completed trials' distinct adapters (but `exclude`)."""
    return median.earlier_losses(read_trials(study), checkpoint, exclude)


def earlier_verdict(study: optuna.Study, adapter_key: str) -> str | None:
    """'complete' when a trial with this adapter completed (or was measured and lost the race),
    else the reason one was pruned."""
    return median.earlier_verdict(read_trials(study), adapter_key)


class MedianRule:
    """Called with (checkpoint index, eval loss) during one training; raises `Stopped` when the
    training is hopeless. The losses seen so far stay on the trial."""

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
        stop = median.median_stop(loss, checkpoint, self.checkpoints, earlier, self.prune_after)
        if stop is not None:
            raise Stopped(Verdict.MEDIAN, stop)
