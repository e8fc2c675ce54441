"""Successive halving on training steps in the study (the rules: decisions/rungs.py).

Optuna's pruners cannot run in a multi-objective study (`Trial.report` raises there), so the
study does it itself. A training runs in rungs; at the end of each but the last its eval loss is
ranked among those of every other training configuration that reached that rung, read from the
study's storage (so every worker sees the same rungs), and the trial stops, PRUNED and paused at
that rung, when it does not rank within the share that goes on.

A paused configuration is promoted later, once enough worse ones reach its rung: `promote_paused`
queues a trial with its parameters, which continues from the rung's checkpoint. Each rung's
checkpoint (the adapter with its optimiser and schedule state, candidates/train_state.py) is a
`rung` entry of the stage cache, so a continuation after a crash or on another worker resumes
from it; the last rung is the `adapter` entry itself, under the key a straight training has: a
training run in parts is the same training (candidates/train.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna

from autotune.candidates.cache import digest
from autotune.candidates.train import TrainResult, load_train_result
from autotune.decisions.record import Rung, TrialRecord, Verdict
from autotune.decisions.rungs import bracket_of, due_for_promotion, pause_reason, rung_ends
from autotune.search.record import Attr, Stopped, read_trials, record_of
from autotune.search.workers.trial_access import stored_trial
from autotune.spaces.schema import FidelitySection

# Builds one part of a training into `out`: (out, the step it ends at or None, the checkpoint
# it continues from or None).
TrainPart = Callable[[Path, int | None, Path | None], None]
CURVE_POINTS = 200  # the most training-loss points a trial keeps


def rung_key(adapter: str, end: int) -> str:
    return digest({"adapter": adapter, "rung_end": end})


def loss_curve(result: TrainResult) -> dict[str, list[list[float]]]:
    """The training loss per step (thinned to at most CURVE_POINTS) and the eval losses."""
    every = max(1, math.ceil(len(result.train_losses) / CURVE_POINTS))
    train = [[step + 1, loss] for step, loss in enumerate(result.train_losses)]
    kept = train[::every] + ([train[-1]] if train and (len(train) - 1) % every else [])
    return {"train": kept, "eval": [[step, loss] for step, loss in result.eval_losses]}


def train_in_rungs(
    trial: optuna.Trial,
    key: str,
    total: int,
    fidelity: FidelitySection,
    build: Callable[[str, str, Callable[[Path], None]], Path],
    train_part: TrainPart,
    settled: bool,
    promoted_through: int = 0,
) -> Path:
    """The adapter, trained rung by rung; raises `Stopped` (PAUSED) when the trial is paused.

    `build(stage, key, make)` is the stage cache's get_or_build. A `settled` configuration (a
    sibling's, whose training had finished when it was queued, or one a completed trial used)
    is not judged again, nor a promoted one on the `promoted_through` rungs its promotion
    decided. Every rung is judged even when its checkpoint is cached: the cache decides nothing.
    """
    ends = rung_ends(total, fidelity)
    bracket = 0  # one bracket: plain successive halving, nothing to read
    if fidelity.brackets > 1:
        bracket = bracket_of(read_trials(trial.study), key, fidelity)
    rung = Rung(of=len(ends), bracket=bracket, ends=tuple(ends))
    trial.set_user_attr(Attr.RUNG, rung.to_json())  # the bracket, for a retry and other workers
    previous: Path | None = None
    for index, end in enumerate(ends):
        last = index == len(ends) - 1
        stage, entry = ("adapter", key) if last else ("rung", rung_key(key, end))

        def part(out: Path, stop: int | None = None if last else end, resume=previous) -> None:
            train_part(out, stop, resume)

        path = build(stage, entry, part)
        result = load_train_result(path)
        rung = replace(rung, reached=index + 1, steps=end, losses=(*rung.losses, result.eval_loss))
        trial.set_user_attr(Attr.RUNG, rung.to_json())  # in the storage: other workers rank by it
        trial.set_user_attr(Attr.LOSS_CURVE, loss_curve(result))
        if last:
            return path
        if fidelity.stop and not settled and index >= max(promoted_through, bracket):
            records = read_trials(trial.study)
            stopped = pause_reason(records, key, result.eval_loss, index, ends, fidelity, bracket)
            if stopped is not None:
                trial.set_user_attr(Attr.RUNG, replace(rung, stopped=stopped).to_json())
                raise Stopped(Verdict.PAUSED, stopped)
        previous = path
    raise AssertionError("unreachable: the last rung returns")


def promoted_through(study: optuna.Study, trial: optuna.Trial) -> int:
    """The rungs a promoted trial's promotion decided (0 for any other trial)."""
    paused = trial.user_attrs.get(Attr.PROMOTED_FROM)
    if paused is None:
        return 0
    rung = record_of(stored_trial(study, paused)).rung  # one trial read, not the whole study
    return rung.reached if rung else 0


def proposed_again(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a pruned trial brought nothing new: a repeat of a completed configuration, or a
    configuration an earlier trial had already taken to a rung (not a promotion)."""
    record = record_of(trial)
    if not record.pruned or record.promoted_from is not None:
        return False
    if record.verdict is Verdict.REPEAT:
        return True
    key = record.adapter_key
    return bool(key) and any(
        r.number < record.number and r.adapter_key == key for r in read_trials(study)
    )


def promote_paused(study: optuna.Study, fidelity: FidelitySection, idle: bool = False) -> list[int]:
    """Queue a continuation of each paused configuration that now ranks within its rung's
    share, highest rung first (decisions/rungs.py: `due_for_promotion`, `idle` included); the
    numbers of the paused trials promoted."""
    chosen: list[TrialRecord] = due_for_promotion(read_trials(study), fidelity, idle)
    for record in chosen:
        study.enqueue_trial(record.suggested, user_attrs={Attr.PROMOTED_FROM: record.number})
    return [record.number for record in chosen]
