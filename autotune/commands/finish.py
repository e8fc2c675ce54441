"""How a study command ends: the run folder's outputs written (one process at a time), and the
exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna

from autotune.candidates.cache import file_lock
from autotune.console.progress import Progress
from autotune.reports.outputs import RunOutputs, write_outputs
from autotune.reports.results import RunResults
from autotune.search.confirm import confirm
from autotune.search.run import Run
from autotune.search.study import Outcome, count
from autotune.spaces import Space


def confirm_front(run: Run, study: optuna.Study, progress: Progress) -> None:
    """The confirmation round (search/confirm.py) on the top tier, unless the space turns it off."""
    if not run.space.strategy.confirm:
        return
    tiers = RunResults.of(study, run.space, run.target, label="").selection.tiers
    numbers = sorted(c.number for c in tiers[0]) if tiers else []  # search-time top tier
    if len(numbers) >= 2:
        with progress.step(f"confirmation round: trials {numbers} in turns"):
            confirm(study, run.space, run.target, numbers)


def write_outputs_locked(
    study: optuna.Study, space: Space, target: str, out: Path, wall_seconds: float
) -> RunOutputs:
    """The run folder's outputs, written by one process at a time."""
    with file_lock(out / "outputs.lock"):
        return write_outputs(study, space, target, out, wall_seconds)


def finish(study: optuna.Study, space: Space, outcome: Outcome | None) -> int:
    """The exit code: 1 when the study stopped on failures or nothing completed."""
    stopped = outcome.stop_reason(space.strategy) if outcome is not None else None
    if stopped:
        print(f"autotune: {stopped}; see trials.csv and trials/*/error.log", file=sys.stderr)
        return 1
    if count(study, optuna.trial.TrialState.COMPLETE) == 0:
        print(
            "autotune: no trial completed; see the errors in trials.csv and trials/*/error.log",
            file=sys.stderr,
        )
        return 1
    return 0
