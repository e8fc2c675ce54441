"""The median rule: stop a training whose eval loss at a checkpoint is worse than the median of
earlier trainings' at the same checkpoint (Optuna's MedianPruner, decided on our own records
because Optuna cannot prune multi-objective studies).

A training configuration judged once keeps its verdict: one that completed (or whose export was
measured and lost a race: its training finished) is never pruned later, and one that was pruned
is pruned again at once, without training, when the sampler proposes it again.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from autotune.decisions.record import TrialRecord

SETTLED = "complete"


def earlier_losses(
    records: Sequence[TrialRecord], checkpoint: int, exclude: str = ""
) -> list[float]:
    """Eval losses at `checkpoint` of the completed trials' distinct adapters (but `exclude`)."""
    by_adapter: dict[str, float] = {}
    for record in records:
        key = record.adapter_key or str(record.number)
        if record.complete and checkpoint < len(record.checkpoint_losses) and key != exclude:
            by_adapter[key] = record.checkpoint_losses[checkpoint]
    return list(by_adapter.values())


def earlier_verdict(records: Sequence[TrialRecord], adapter_key: str) -> str | None:
    """`SETTLED` when a trial with this adapter completed (or was measured and lost the race),
    else the reason one was pruned; None when no trial judged it."""
    same = [r for r in records if r.adapter_key == adapter_key]
    if any(r.complete or (r.pruned and r.raced is not None) for r in same):
        return SETTLED
    pruned = [r for r in same if r.pruned]
    if pruned:
        return f"as trial {pruned[0].number}: {pruned[0].reason}"
    return None


def median_stop(
    loss: float, checkpoint: int, checkpoints: int, earlier: Sequence[float], prune_after: int
) -> str | None:
    """Why a training with `loss` at `checkpoint` stops, or None when it goes on (or fewer than
    `prune_after` earlier trainings reached that checkpoint)."""
    if len(earlier) < prune_after:
        return None
    median = statistics.median(earlier)
    if loss <= median:
        return None
    return (
        f"eval loss {loss:.4f} at checkpoint {checkpoint + 1} of {checkpoints} is "
        f"worse than the median {median:.4f} of {len(earlier)} earlier trainings"
    )
