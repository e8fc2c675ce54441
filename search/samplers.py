"""The Optuna sampler a study uses, by name: tpe (default), nsga2, gp, random or grid.

TPE is multivariate: it models the knobs jointly, since the best learning rate depends on the
rank (bench/search_efficiency.py: it reached 95% of the grid's hypervolume within a third of the
grid's cost on 4 seeds of 5, against 3 of 5 with independent TPE).

Every sampler is seeded. A resumed study (or another worker) passes a different `seed` (see
`sampler_seed`), so it does not replay the random draws of the first run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

from autotune.candidates.cache import digest
from autotune.search.siblings import export_combinations
from autotune.spaces import Choices, Range, Space


def sampler_seed(seed: int, trials_so_far: int, worker: str = "") -> int:
    """The seed of a sampler that starts after `trials_so_far` trials: `seed` for a new study run
    by one process; one of several workers sharing a study (`worker`) gets a seed of its own."""
    if trials_so_far == 0 and not worker:
        return seed
    return int(digest({"seed": seed, "trials": trials_so_far, "worker": worker}), 16) % 2**31


def grid_values(space: Space) -> dict[str, list[Any]]:
    """Each searched knob's values for a grid; ValueError naming a knob with no finite grid."""
    grid: dict[str, list[Any]] = {}
    for name, knob in space.search.items():
        if isinstance(knob, Choices):
            grid[name] = list(knob.choices)
        elif isinstance(knob, Range) and knob.step:
            values = np.arange(knob.low, knob.high + knob.step / 2, knob.step)
            grid[name] = [v.item() for v in values]
        elif isinstance(knob, Range):
            raise ValueError(
                f"search.{name}: the grid sampler needs {{choices: [...]}} or a range with a step"
            )
    return grid


def startup_trials(space: Space) -> int:
    """Random trials before a model-based sampler takes over: a fifth of the trainings the budget
    allows (2 to 5), each counted with its precision siblings, which also teach the sampler."""
    combinations = max(1, len(export_combinations(space, {})))
    trainings = space.budget.trials // combinations
    return max(2, min(5, trainings // 5)) * combinations


def make_sampler(name: str, seed: int, space: Space) -> optuna.samplers.BaseSampler:
    """A seeded sampler; the study's constraints (`trial.set_constraint`) guide all but random
    and grid."""
    budget = space.budget.trials
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup_trials(space),
            multivariate=True,
            constant_liar=True,  # trials running in other workers count as bad: none repeated
        )
    if name == "nsga2":
        # A population the budget can breed a few generations of.
        population = max(4, min(50, budget // 3))
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(space))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_values(space), seed=seed)
    raise ValueError(f"unknown sampler {name!r}")
