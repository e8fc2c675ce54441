"""What the terminal shows while a study runs.

On a terminal: a progress bar of completed trials against the budget and a line for the running
trial's stage with its elapsed time, above which one line per trial scrolls by. Elsewhere (logs,
pipes, tests): the same lines, plain, and no bars. `quiet` keeps only failures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars

from autotune.search.events import StudyEvents
from autotune.spaces.metrics import fmt


class Progress(StudyEvents):
    """Prints a study's progress to stderr; `quiet` keeps only failures."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self._trial: int | None = None  # the trial being run, if any
        self._bars: Bars | None = None  # the live study and stage bars, on a terminal
        self._study_task: Any = None
        self._stage_task: Any = None

    @property
    def live(self) -> bool:
        return not self.quiet and self.console.is_terminal

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    @contextmanager
    def study(self, total: int, completed: int) -> Iterator[None]:
        """Show the study's bar (completed trials of `total`) while the block runs."""
        if not self.live:
            yield
            return
        bars = Bars(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._study_task = bars.add_task(
            "study", total=total, completed=completed, count=f"{completed}/{total} trials"
        )
        self._stage_task = bars.add_task("", total=None, visible=False, count="")
        self._bars = bars
        try:
            with bars:
                yield
        finally:
            self._bars = None

    def completed(self, count: int, total: int) -> None:
        """The study now has `count` completed trials of `total`."""
        if self._bars is not None:
            self._bars.update(
                self._study_task,
                completed=count,
                total=total,
                count=f"{count}/{total} trials",
                refresh=True,
            )

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a named step, with a live status line on a terminal.

        Inside a trial the trial's closing line lists the steps' times instead of one line each.
        """
        start = time.perf_counter()
        label = "" if self._trial is None else f"trial {self._trial} · "
        if self._bars is not None:
            self._bars.reset(self._stage_task, description=f"{label}{name}", visible=True)
            try:
                yield
            finally:
                self._bars.update(self._stage_task, visible=False, refresh=True)
        elif self.live:
            with self.console.status(f"{label}{name} ..."):
                yield
        else:
            yield
        if self._trial is None:
            self.note(f"{name}: {time.perf_counter() - start:.1f}s")

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._trial = number
        shown = ", ".join(f"{k}={fmt(v, 3)}" for k, v in params.items() if v is not None)
        self.note(f"[bold]trial {number}[/bold]  {shown}")

    def trial_done(self, number: int, seconds: dict[str, float], values: dict[str, float]) -> None:
        self._trial = None
        stages = " · ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
        result = ", ".join(f"{k} {fmt(v)}" for k, v in values.items())
        self.note(f"  [green]done[/green]  {stages}  →  {result}")

    def trial_pruned(self, number: int, reason: str) -> None:
        self._trial = None
        self.note(f"  [yellow]pruned[/yellow]  {reason}")

    def trial_failed(self, number: int, reason: str) -> None:
        self._trial = None
        self.console.print(f"  [red]trial {number} failed[/red]: {reason}")
