"""What the terminal shows while a study runs: one line per step and per trial."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


class Progress:
    """Prints progress to stderr; `quiet` keeps only failures."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self._trial: int | None = None  # the trial being run, if any

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a named step, with a live status line on a terminal.

        Inside a trial the trial's closing line lists the steps' times instead of one line each.
        """
        start = time.perf_counter()
        if self.quiet or not self.console.is_terminal:
            yield
        else:
            label = "" if self._trial is None else f"trial {self._trial}: "
            with self.console.status(f"{label}{name} ..."):
                yield
        if self._trial is None:
            self.note(f"{name}: {time.perf_counter() - start:.1f}s")

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._trial = number
        shown = ", ".join(f"{k}={_short(v)}" for k, v in params.items() if v is not None)
        self.note(f"[bold]trial {number}[/bold]  {shown}")

    def trial_done(self, number: int, seconds: dict[str, float], values: dict[str, float]) -> None:
        self._trial = None
        stages = " · ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
        result = ", ".join(f"{k} {v:.4g}" for k, v in values.items())
        self.note(f"  [green]done[/green]  {stages}  →  {result}")

    def trial_pruned(self, number: int, reason: str) -> None:
        self._trial = None
        self.note(f"  [yellow]pruned[/yellow]  {reason}")

    def trial_failed(self, number: int, reason: str) -> None:
        self._trial = None
        self.console.print(f"  [red]trial {number} failed[/red]: {reason}")
