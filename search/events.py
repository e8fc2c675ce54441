"""What a study tells its onlooker: the interface the terminal (autotune/console/) implements.

The search runs trials and calls these methods as things happen; it never prints. The base class
does nothing, so a bench or a test can run a study silently with `StudyEvents()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StudyEvents:
    """Called by the study as it runs; every method here does nothing."""

    def note(self, text: str) -> None:
        """A line for the onlooker (data sizes, the base, interrupted trials)."""

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A named step (a trial's stage, or a step before the trials) runs inside the block."""
        yield

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        """Trial `number` starts with these parameters."""

    def trial_done(self, number: int, seconds: dict[str, float], values: dict[str, float]) -> None:
        """Trial `number` completed: seconds per stage and its objective values."""

    def training_step(self, step: int, total: int, loss: float, examples_per_s: float) -> None:
        """The running trial's training finished optimiser step `step` of `total` (counted over
        the whole training, rungs included) with this training loss and throughput."""

    def trial_pruned(self, number: int, reason: str) -> None:
        """Trial `number` was pruned, and why."""

    def trial_failed(self, number: int, reason: str) -> None:
        """Trial `number` failed, and why."""

    def completed(self, count: int, total: int) -> None:
        """The study now holds `count` completed trials of the `total` it wants."""
