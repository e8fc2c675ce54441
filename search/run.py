"""What every trial of one study shares: the space, the target, the folders, the data split and
the base model, prepared once by `prepare_run`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.candidates.base import BaseModel, resolve_base
from autotune.candidates.cache import StageCache, digest
from autotune.candidates.data import Dataset, load_dataset
from autotune.evaluators.environment import describe
from autotune.search.events import StudyEvents
from autotune.spaces import Space


@dataclass
class Run:
    """What every trial of one study shares: the space, the target, the folders, data and base."""

    space: Space
    target: str
    out: Path
    cache: StageCache
    dataset: Dataset
    base: BaseModel
    events: StudyEvents
    environment: dict[str, Any]

    @functools.cached_property
    def train_identity(self) -> str:
        """What determines the training data: the examples of the split and the templates."""
        split = [(e.prompt, e.completion) for e in self.dataset.train]
        return digest({"train": split, "eval_size": len(self.dataset.eval)})

    @functools.cached_property
    def eval_identity(self) -> str:
        """What the measurements are taken on: the eval examples and the labels."""
        split = [(e.prompt, e.completion) for e in self.dataset.eval]
        return digest({"eval": split, "labels": self.dataset.labels})

    @property
    def versions(self) -> dict[str, str]:
        """The installed versions of the tools, read once with the machine's description."""
        return self.environment["versions"]

    def trial_dir(self, number: int) -> Path:
        path = self.out / "trials" / str(number)
        path.mkdir(parents=True, exist_ok=True)
        return path


def prepare_run(space: Space, target: str, out: Path, cache_dir: Path, events: StudyEvents) -> Run:
    """Load the data and resolve (or build) the base model once for the whole study."""
    out.mkdir(parents=True, exist_ok=True)
    cache = StageCache(cache_dir)
    with events.step("data"):
        dataset = load_dataset(space)
    with events.step("base model"):
        base = resolve_base(space, dataset, cache)
    sizes = f"{len(dataset.train)} train / {len(dataset.eval)} eval examples"
    events.note(f"data: {sizes}; base: {base.description}")
    return Run(space, target, out, cache, dataset, base, events, describe(target))
