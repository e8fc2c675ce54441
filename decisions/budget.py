"""The study's budget: exactly `trials` completed trials, counted over every worker, which
proposals are not worth a trial, and how many distinct configurations a space holds (the budget
is cut to them: `plan_for`).

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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autotune.decisions.record import TrialRecord
from autotune.decisions.rungs import ranks_anything
from autotune.spaces import KNOBS, Choices, Knob, Range, Space
from autotune.spaces.knobs import EXPORT_KNOBS, INT4_KNOBS


def repeat_of(suggested: dict[str, Any], records: Sequence[TrialRecord]) -> int | None:
    """The completed trial whose sampled parameters a trial that sampled `suggested` repeats."""
    return next((r.number for r in records if r.complete and r.suggested == suggested), None)


def budget_reached(completed: int, trials: int) -> bool:
    return completed >= trials


def room_for_one(completed: int, running: int, trials: int) -> bool:
    """Whether one more trial fits beside the completed and (earlier) running ones."""
    return completed + running < trials


# How many distinct configurations a space holds, and the plan that follows from it.
#
# Counted in one place because three decisions read it: the budget (no more completed trials
# than there are configurations to complete: a larger budget only buys repeats), successive
# halving (a rung ranks nothing when fewer trainings reach it than it screens), and the queue of
# an exhaustive study (every configuration once, none left to a sampler that proposes repeats).


@dataclass(frozen=True)
class Configurations:
    """The distinct configurations of a space: trainings (math.inf when a training knob is a
    continuous range) times the export settings each training is measured at (the precision
    siblings; the int4 knobs count for int4 only, as they are suggested for it only)."""

    trainings: float
    exports: int

    @property
    def candidates(self) -> float:
        return self.trainings * self.exports


def knob_choices(name: str, knob: Knob) -> list[Any] | None:
    """The distinct values a knob can take in a trial; None for a continuous range. A fixed
    knob takes one; a range with a step (or of integers) takes every step from low to high, as
    Optuna's suggest_int / suggest_float with a step do."""
    if isinstance(knob, Choices):
        distinct = {(type(c), c): c for c in knob.choices}
        return list(distinct.values())
    if isinstance(knob, Range):
        if KNOBS[name].integer:
            step = int(knob.step or 1)
            return list(range(int(knob.low), int(knob.high) + 1, step))
        if knob.step is None:
            return None
        count = math.floor((knob.high - knob.low) / knob.step + 1e-9) + 1
        return [knob.low + i * knob.step for i in range(count)]
    return [knob]


def _sampled(space: Space) -> dict[str, list[Any] | None]:
    return {name: knob_choices(name, knob) for name, knob in space.search.items()}


def _export_settings(space: Space) -> list[dict[str, Any]]:
    """Every export setting a trial can sample, as its values (fixed knobs included)."""
    choices = _sampled(space)
    names = [n for n in EXPORT_KNOBS if n in choices and n != "precision"]
    settings = []
    for precision in choices["precision"] or []:
        used = [n for n in names if precision == "int4" or n not in INT4_KNOBS]
        for chosen in itertools.product(*(choices[n] or [] for n in used)):
            settings.append({"precision": precision, **dict(zip(used, chosen, strict=True))})
    return settings


def distinct_configurations(space: Space) -> Configurations:
    """How many distinct configurations the space's search holds (see `Configurations`)."""
    choices = _sampled(space)
    trainings = math.prod(
        math.inf if values is None else len(values)
        for name, values in choices.items()
        if KNOBS[name].stage == "train"
    )
    return Configurations(trainings, len(_export_settings(space)))


def every_configuration(space: Space) -> list[dict[str, Any]]:
    """The sampled parameters (what `trial.params` holds: fixed knobs left out) of every
    distinct configuration of a finite space, one training's first export setting before any
    training's second: queued in this order, workers train different configurations first."""
    choices = _sampled(space)
    searched = {name for name, knob in space.search.items() if isinstance(knob, Choices | Range)}
    train_names = [n for n in choices if KNOBS[n].stage == "train"]
    trainings = [
        dict(zip(train_names, chosen, strict=True))
        for chosen in itertools.product(*(choices[n] or [] for n in train_names))
    ]
    return [
        {k: v for k, v in {**training, **export}.items() if k in searched}
        for export in _export_settings(space)
        for training in trainings
    ]


@dataclass(frozen=True)
class Plan:
    """How a study spends its budget, given how many configurations the space holds.

    - `trials`: the budget, cut to the number of configurations when it is larger;
    - `exhaustive`: the budget covers every configuration: each is queued once (no sampler, no
      repeat), and each trains straight to its end (stopping one early would only leave the
      budget unfilled);
    - `halving`: successive halving stays on: enough trainings reach its first rung for it to
      rank them (`decisions/rungs.py` `ranks_anything`);
    - `median`: the median rule stays on: more trainings than the completed ones it waits for.
    """

    trials: int
    exhaustive: bool
    halving: bool
    median: bool
    notes: tuple[str, ...] = ()


def plural(count: float, word: str) -> str:
    return f"{count:g} {word}" + ("" if count == 1 else "s")


def plan_for(space: Space) -> Plan:
    """The plan of a study of `space` (see `Plan`), with a line for each change it makes."""
    found = distinct_configurations(space)
    strategy, wanted = space.strategy, space.budget.trials
    notes: list[str] = []
    exhaustive = found.candidates <= wanted
    trials = int(min(wanted, found.candidates))
    if found.candidates < wanted:
        notes.append(
            f"the budget is cut from {wanted} to {trials} completed trials: the space holds "
            f"{plural(found.candidates, 'distinct configuration')} "
            f"({plural(found.trainings, 'training')} x {plural(found.exports, 'export setting')})"
            ", each run once"
        )
    fidelity = strategy.fidelity
    halving = fidelity is not None and not exhaustive and ranks_anything(found.trainings, fidelity)
    median = (
        fidelity is None
        and strategy.prune
        and not exhaustive
        and found.trainings > strategy.prune_after
    )
    if fidelity is not None and not halving:
        why = (
            "every configuration runs"
            if exhaustive
            else f"{plural(found.trainings, 'training configuration')}, fewer than the "
            f"{max(2, fidelity.screen)} its first rung ranks"
        )
        notes.append(f"successive halving off: {why}; each training runs straight to its end")
    elif fidelity is None and strategy.prune and not median:
        notes.append(
            "median rule off: "
            + (
                "every configuration runs"
                if exhaustive
                else f"{plural(found.trainings, 'training configuration')}, no more than the "
                f"{strategy.prune_after} completed ones it waits for"
            )
        )
    return Plan(trials, exhaustive, halving, median, tuple(notes))
