"""How a study command ends: the run folder's outputs written (one process at a time), and the
exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna

from autotune.candidates.cache import file_lock
from autotune.console.progress import Progress
from autotune.reports.outputs import RunOutputs, write_outputs
from autotune.search.decide import Decision, conclude
from autotune.search.run import Run
from autotune.search.study import Outcome, count
from autotune.spaces import Space


def confirm_front(run: Run, study: optuna.Study, progress: Progress) -> Decision:
    """The study's decision: the confirmation round on the top tier (unless the space turns it
    off), then the pick (search/decide.py)."""
    return conclude(study, run.space, run.target, progress)


def write_outputs_locked(
    study: optuna.Study,
    space: Space,
    target: str,
    out: Path,
    wall_seconds: float,
    decision: Decision | None = None,
) -> RunOutputs:
    """The run folder's outputs, written by one process at a time, from the study's `decision`
    (or, when none was made, e.g. after Ctrl-C, from what the study holds)."""
    with file_lock(out / "outputs.lock"):
        return write_outputs(study, space, target, out, wall_seconds, decision)


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
