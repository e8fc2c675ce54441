"""What the terminal shows while a study runs.

On a terminal: a progress bar of completed trials against the budget and a line for the running
trial's stage with its elapsed time, above which one line per trial scrolls by. While the stage
trains, its line becomes the training's bar: step/total, loss, examples/s and the time left.
Elsewhere (logs, pipes, tests): the same lines, plain, and no bars; a training adds a line at each
tenth of its steps, never more, so a log stays readable. `quiet` keeps only failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bars
from rich.status import Status

from autotune.search.events import StudyEvents
from autotune.spaces.metrics import fmt


@dataclass
class Training:
    """One training as the onlooker follows it: when its first step was seen, the last step, and
    the last tenth of its steps that was shown."""

    start: float
    first: int
    total: int
    last: int = 0
    tenths: int = 0

    def remaining(self, now: float, step: int) -> float | None:
        """Seconds left at the pace since the first step seen (None before a second step)."""
        done = step - self.first
        return (now - self.start) / done * (self.total - step) if done > 0 else None


def duration(seconds: float | None) -> str:
    """`45s`, `1m 52s`, `2h 05m`; `?` when unknown."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


class Progress(StudyEvents):
    """Prints a study's progress to stderr; `quiet` keeps only failures."""

    def __init__(
        self,
        quiet: bool = False,
        console: Console | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)
        self.clock = clock  # what a training's time left is reckoned by
        self._trial: int | None = None  # the trial being run, if any
        self._bars: Bars | None = None  # the live study and stage bars, on a terminal
        self._study_task: Any = None
        self._stage_task: Any = None  # the running stage's line among the bars
        self._status: Status | None = None  # the stage's spinner, on a terminal without bars
        self._stage = ""  # the running stage's label ("trial 3 · train")
        self._training: Training | None = None

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
        outer = self._stage, self._stage_task, self._status
        self._stage = f"{label}{name}"
        try:
            if self._bars is not None:  # a fresh line: a training makes its bar determinate
                self._stage_task = self._bars.add_task(self._stage, total=None, count="")
                try:
                    yield
                finally:
                    self._bars.remove_task(self._stage_task)
                    self._bars.refresh()
            elif self.live:
                with self.console.status(f"{self._stage} ...") as self._status:
                    yield
            else:
                yield
        finally:
            self._stage, self._stage_task, self._status = outer
        if self._trial is None:
            self.note(f"{name}: {time.perf_counter() - start:.1f}s")

    def training_step(self, step: int, total: int, loss: float, examples_per_s: float) -> None:
        """The running stage's line on a terminal; a plain line per tenth of the steps elsewhere."""
        if self.quiet or total <= 0:
            return
        now = self.clock()
        run = self._training
        if run is None or step <= run.last or total != run.total:  # another training
            run = self._training = Training(start=now, first=step, total=total)
        run.last = step
        tenths = step * 10 // total
        crossed = tenths > run.tenths
        run.tenths = max(tenths, run.tenths)
        eta = duration(run.remaining(now, step) if step < total else 0.0)
        if self._bars is not None and self._stage_task is not None:
            count = f"{step}/{total} · loss {loss:.3f} · {examples_per_s:.1f} ex/s · eta {eta}"
            self._bars.update(
                self._stage_task, total=total, completed=step, count=count, refresh=crossed
            )
        elif self._status is not None:
            self._status.update(
                f"{self._stage} {step}/{total} · loss {loss:.3f} · "
                f"{examples_per_s:.1f} examples/s · eta {eta}"
            )
        elif not self.live and crossed:
            self.console.print(
                f"  train {step}/{total} ({100 * step // total}%) loss {loss:.3f} · "
                f"{examples_per_s:.1f} examples/s · eta {eta}",
                markup=False,
                highlight=False,
            )

    def trial_started(self, number: int, params: dict[str, Any]) -> None:
        self._trial, self._training = number, None
        shown = ", ".join(f"{k}={fmt(v, 3)}" for k, v in params.items() if v is not None)
        self.note(f"[bold]trial {number}[/bold]  {shown}")

    def trial_done(self, number: int, seconds: dict[str, float], values: dict[str, float]) -> None:
        self._trial, self._training = None, None
        stages = " · ".join(f"{k} {v:.1f}s" for k, v in seconds.items())
        result = ", ".join(f"{k} {fmt(v)}" for k, v in values.items())
        self.note(f"  [green]done[/green]  {stages}  →  {result}")

    def trial_pruned(self, number: int, reason: str) -> None:
        self._trial, self._training = None, None
        self.note(f"  [yellow]pruned[/yellow]  {reason}")

    def trial_failed(self, number: int, reason: str) -> None:
        self._trial, self._training = None, None
        self.console.print(f"  [red]trial {number} failed[/red]: {reason}")
