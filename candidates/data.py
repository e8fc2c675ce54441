"""Examples for training and evaluation: load the space's data files, render templates, split.

A record such as `{"phrase": "...", "tone": "joy"}` becomes an `Example` with the prompt
(`prompt_template` filled from the record) and the completion (`completion_template`). The split
into train and eval is stratified by label and fixed by `data.split_seed`, so every trial of a
study, and every study on the same data, sees the same examples.
"""

from __future__ import annotations

import os
import random
import string
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from autotune.spaces import Space, SpaceError

_LOADERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Example:
    """One prompt and the completion the model should produce (its label, for classification).

    `text` is the record's own text without the template (the values of the prompt's fields).
    """

    prompt: str
    completion: str
    text: str = ""


@dataclass(frozen=True)
class Dataset:
    """The fixed train/eval split of a space's data."""

    train: list[Example]
    eval: list[Example]
    labels: list[str] | None


def load_records(paths: list[Path]) -> list[dict]:
    """Read json/jsonl/csv/parquet files with Hugging Face datasets, offline."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets

    datasets.disable_progress_bars()
    records: list[dict] = []
    for path in paths:
        kind = _LOADERS.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"{path}: expected a .json, .jsonl, .csv or .parquet file")
        table = datasets.load_dataset(kind, data_files=str(path), split="train")
        records.extend(table.to_list())
    return records


def template_fields(template: str) -> list[str]:
    """The `{field}` names a template uses."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def render(template: str, record: dict) -> str:
    return template.format_map(record)


def to_examples(space: Space, records: list[dict]) -> list[Example]:
    """Render every record; a template field the data lacks is a space error."""
    data = space.data
    for key in ("prompt_template", "completion_template"):
        template = getattr(data, key)
        try:
            fields = template_fields(template)
        except ValueError as error:
            raise SpaceError(
                space.source, f"data.{key}", f"not a valid template: {error}"
            ) from None
        missing = [f for f in fields if records and f not in records[0]]
        if missing:
            raise SpaceError(
                space.source,
                f"data.{key}",
                f"uses {missing} but the data has fields {sorted(records[0])}",
            )
    fields = template_fields(data.prompt_template)
    examples = [
        Example(
            render(data.prompt_template, r),
            render(data.completion_template, r),
            " ".join(str(r[f]) for f in fields),
        )
        for r in records
    ]
    if data.labels is not None:
        unknown = sorted({e.completion for e in examples} - set(data.labels))
        if unknown:
            raise SpaceError(
                space.source,
                "data.labels",
                f"expected every completion among {data.labels}; the data also has {unknown[:5]}",
            )
    return examples


def stratified_split(
    examples: list[Example], eval_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split each completion group separately so train and eval keep the label balance."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.completion].append(example)
    rng = random.Random(seed)
    train: list[Example] = []
    evaluation: list[Example] = []
    for completion in sorted(groups):
        group = sorted(groups[completion], key=lambda e: e.prompt)
        rng.shuffle(group)
        n_eval = round(len(group) * eval_fraction) if len(group) > 1 else 0
        evaluation.extend(group[:n_eval])
        train.extend(group[n_eval:])
    rng.shuffle(train)
    rng.shuffle(evaluation)
    return train, evaluation


def load_dataset(space: Space) -> Dataset:
    """The space's data as a fixed, stratified train/eval split."""
    examples = to_examples(space, load_records(space.data_paths()))
    if len(examples) < 2:
        raise SpaceError(space.source, "data.files", "expected at least 2 records")
    train, evaluation = stratified_split(examples, space.data.eval_fraction, space.data.split_seed)
    if not evaluation:
        raise SpaceError(space.source, "data.eval_fraction", "leaves no example for evaluation")
    return Dataset(train=train, eval=evaluation, labels=space.data.labels)
