"""The study's budget: exactly `trials` completed trials, counted over every worker, and which
proposals are not worth a trial.

A configuration the sampler proposes again once a trial of it completed is not run again (a
repeat): in a small finite space TPE proposes its best points over and over, and those repeats,
free from the cache, would fill the budget without teaching anything. Queued trials (siblings,
retries, promotions) are never repeats.

A worker starts a trial only while the completed trials and those running elsewhere leave room
for it; when two workers start one at the same moment and only one fits, the trial with the
higher number yields: trial numbers are handed out by the storage, so every worker agrees on the
order. A running trial may still fail, so a worker that finds no room waits for the running ones
to end rather than stopping at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autotune.decisions.record import TrialRecord


def repeat_of(suggested: dict[str, Any], records: Sequence[TrialRecord]) -> int | None:
    """The completed trial whose sampled parameters a trial that sampled `suggested` repeats."""
    return next((r.number for r in records if r.complete and r.suggested == suggested), None)


def budget_reached(completed: int, trials: int) -> bool:
    return completed >= trials


def room_for_one(completed: int, running: int, trials: int) -> bool:
    """Whether one more trial fits beside the completed and (earlier) running ones."""
    return completed + running < trials
