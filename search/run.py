"""What every trial of one study shares: the space, the target, the folders, the data split and
the base model, prepared once by `prepare_run`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.candidates.base import BaseModel, resolve_base
from autotune.candidates.cache import StageCache, digest
from autotune.candidates.chat import with_chat_template
from autotune.candidates.data import Dataset, load_dataset
from autotune.candidates.export import ExportParams
from autotune.candidates.model_check import check_base
from autotune.candidates.preflight import preflight
from autotune.candidates.train import training_device
from autotune.evaluators.environment import EXPORT_TOOLS, describe, tools
from autotune.evaluators.metric_check import check_scoring
from autotune.search.events import StudyEvents
from autotune.search.params import first_export
from autotune.spaces import Space, knob_values


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
        identity: dict[str, Any] = {"eval": split, "labels": self.dataset.labels}
        texts = self.dataset.label_texts or {}
        if any(text != label for label, text in texts.items()):  # scored as " joy", not "joy"
            identity["label_texts"] = texts
        return digest(identity)

    @property
    def versions(self) -> dict[str, str]:
        """The installed versions of the tools, read once with the machine's description."""
        return self.environment["versions"]

    def trial_dir(self, number: int) -> Path:
        path = self.out / "trials" / str(number)
        path.mkdir(parents=True, exist_ok=True)
        return path


def check_inputs(
    space: Space, target: str, cache: StageCache, events: StudyEvents, versions: dict[str, str]
) -> tuple[Dataset, BaseModel]:
    """Everything a study needs that can be wrong, checked before any training and before the
    study exists: the data, the base model (built, dequantised or found), its architecture and
    target modules (candidates/model_check.py) and a one-layer export at each precision
    (candidates/preflight.py). Only the stage cache is written."""
    with events.step("data"):
        dataset = load_dataset(space)
    with events.step("metric"):
        check_scoring(space, [e.completion.strip() for e in dataset.eval])
    with events.step("base model"):
        base = resolve_base(space, dataset, cache)
        architecture = check_base(space, base.path)
        dataset = with_chat_template(dataset, base.path, space)
    with events.step("preflight export"):
        preflight(
            base.path,
            base.key,
            preflight_exports(space, target),
            cache,
            tools(versions, EXPORT_TOOLS),
            has_gpu=training_device() == "cuda",
        )
    events.note(
        f"base: {base.description}, {architecture}; LoRA on {space.train.target_modules}; "
        "exports at every precision of the space (one layer)"
    )
    return dataset, base


def preflight_exports(space: Space, target: str) -> list[ExportParams]:
    """One export per precision of the space, with the first value of each other export knob."""
    return [first_export(space, target, p) for p in knob_values(space.search["precision"])]


def prepare_run(space: Space, target: str, out: Path, cache_dir: Path, events: StudyEvents) -> Run:
    """Check the inputs and resolve (or build) the base model once for the whole study."""
    cache, environment = StageCache(cache_dir), describe(target)
    dataset, base = check_inputs(space, target, cache, events, environment["versions"])
    sizes = f"{len(dataset.train)} train / {len(dataset.eval)} eval examples"
    events.note(f"data: {sizes}")
    return Run(space, target, out, cache, dataset, base, events, environment)
