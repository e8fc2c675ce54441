"""Examples for training and evaluation: load the space's data files, render templates, split.

A record such as `{"phrase": "...", "tone": "joy"}` becomes an `Example` with the prompt
(`prompt_template` filled from the record) and the completion (`completion_template`). The split
into train and eval is stratified by label and fixed by `data.split_seed`, so every trial of a
study, and every study on the same data, sees the same examples.

The files are read by candidates/records.py; every record is checked here, as a null field would
otherwise be trained on as the text "None", and reported as `FILE: line N: what is wrong`.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter, defaultdict
from dataclasses import dataclass

from autotune.candidates.records import Record, kind, load_records
from autotune.candidates.subset import stratified_take
from autotune.spaces import Space, SpaceError


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
    """The fixed train/eval split of a space's data.

    `label_texts` maps each label to its completion as the data renders it (" joy" for a
    `completion_template` of " {tone}"): label scoring must score the tokens training saw.
    """

    train: list[Example]
    eval: list[Example]
    labels: list[str] | None
    label_texts: dict[str, str] | None = None


# --------------------------------------------------------------------------- rendering


def template_fields(template: str) -> list[str]:
    """The record fields a template uses (`tone` for `{tone}` and for `{tone[0]}`), once each."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    return list(dict.fromkeys(re.split(r"[.\[]", name)[0] for name in names))


def _fields(space: Space, key: str, records: list[Record]) -> list[str]:
    """The fields of the template `key`; one that no record has is a template error."""
    template = getattr(space.data, key)
    try:
        fields = template_fields(template)
    except ValueError as error:
        raise SpaceError(space.source, f"data.{key}", f"not a valid template: {error}") from None
    if any(not f or f.isdigit() for f in fields):
        message = "expected named fields such as {phrase}, not {} or {0}"
        raise SpaceError(space.source, f"data.{key}", message)
    absent = [f for f in fields if not any(f in r.values for r in records)]
    if absent and records:
        first = records[0]
        raise SpaceError(
            space.source,
            f"data.{key}",
            f"uses {absent} but the data has fields {sorted(first.values)} ({first.path})",
        )
    return fields


def _check_value(record: Record, field: str, key: str) -> None:
    """A template field must hold a string or a number: null or missing would be trained on as
    "None" (an empty CSV cell is null), a list or a dict as its repr."""
    used = f"(the {key} uses it)"
    if field not in record.values:
        raise record.error(f"field {field!r} is missing {used}")
    value = record.values[field]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        cell = record.path.suffix.lower() == ".csv"
        shown = "NaN" if value is not None else "empty" if cell else "null"
        raise record.error(f"field {field!r} is {shown} {used}; expected a string")
    if isinstance(value, list | tuple | dict):
        raise record.error(f"field {field!r} is {kind(value)} {used}; expected a string")


def _render(record: Record, key: str, template: str) -> str:
    try:
        return template.format_map(record.values)
    except (KeyError, IndexError, AttributeError, ValueError, TypeError) as error:
        raise record.error(f"cannot render the {key}: {type(error).__name__}: {error}") from None


def to_examples(space: Space, records: list[Record]) -> list[Example]:
    """Render every record, each checked: a field a template uses must hold a string or a
    number, and with labels every completion (stripped) must be one of them."""
    data = space.data
    keys = ("prompt_template", "completion_template")
    fields = {key: _fields(space, key, records) for key in keys}
    examples = []
    for record in records:
        for key in keys:
            for field in fields[key]:
                _check_value(record, field, key)
        examples.append(
            Example(
                _render(record, "prompt_template", data.prompt_template),
                _render(record, "completion_template", data.completion_template),
                " ".join(str(record.values[f]) for f in fields["prompt_template"]),
            )
        )
    if data.labels is not None:
        _check_labels(space, records, examples)
    return examples


def _check_labels(space: Space, records: list[Record], examples: list[Example]) -> None:
    """Labels are compared with the completions stripped: `completion_template: " {tone}"`
    renders " joy", which is the label `joy`."""
    labels = space.data.labels or []
    padded = [label for label in labels if label != label.strip()]
    if padded:
        raise SpaceError(
            space.source,
            "data.labels",
            f"{padded[0]!r} has surrounding whitespace; completions are compared with the labels "
            f"stripped, so write {padded[0].strip()!r}",
        )
    known = set(labels)
    wrong = [(r, e.completion) for r, e in zip(records, examples, strict=True)]
    wrong = [(r, c) for r, c in wrong if c.strip() not in known]
    if not wrong:
        return
    record, completion = wrong[0]
    near = [label for label in labels if label.casefold() == completion.strip().casefold()]
    others = sorted({c.strip() for _, c in wrong} - {completion.strip()})
    raise SpaceError(
        space.source,
        "data.labels",
        f"expected every completion among {labels} (compared stripped of surrounding "
        f"whitespace); {record.path}: {record.where}: the completion is {completion!r}"
        + (f", the label {near[0]!r} differs in case" if near else "")
        + f" ({len(wrong)} record(s) in all are not among the labels"
        + (f"; other completions: {others[:5]})" if others else ")"),
    )


def label_texts(labels: list[str], examples: list[Example]) -> dict[str, str]:
    """Each label as the completions render it, the tokens training trains on: the commonest
    rendering in the data (ties: the first in sorted order), else the label as written."""
    counts = Counter(e.completion for e in examples)
    texts = {}
    for label in labels:
        seen = [(-n, text) for text, n in counts.items() if text.strip() == label]
        texts[label] = min(seen)[1] if seen else label
    return texts


# --------------------------------------------------------------------------- splitting


def stratified_split(
    examples: list[Example], eval_fraction: float, seed: int, stratify: bool = True
) -> tuple[list[Example], list[Example]]:
    """Split each label group (the stripped completion) separately so train and eval keep the
    label balance. `stratify=False` (no labels): one group, as a generative data set's
    completions are mostly all different and a group of one goes wholly to training."""
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.completion.strip() if stratify else ""].append(example)
    rng = random.Random(seed)
    train: list[Example] = []
    evaluation: list[Example] = []
    for completion in sorted(groups):
        group = sorted(groups[completion], key=lambda e: (e.prompt, e.completion))
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
    stratify = space.data.labels is not None
    train, evaluation = stratified_split(
        examples, space.data.eval_fraction, space.data.split_seed, stratify
    )
    train = stratified_take(train, space.data.max_train, stratify)
    evaluation = stratified_take(evaluation, space.data.max_eval, stratify)
    if not evaluation:
        raise SpaceError(space.source, "data.eval_fraction", "leaves no example for evaluation")
    labels = space.data.labels
    texts = label_texts(labels, examples) if labels else None
    return Dataset(train=train, eval=evaluation, labels=labels, label_texts=texts)
