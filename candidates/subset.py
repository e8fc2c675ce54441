"""Stratified subsets of a split: `data.max_train` / `data.max_eval`, and any fixed sample that
must keep the label balance.

The split is already shuffled with the space's seed, so a subset takes the first examples of
each label group, as many from each as its share of the whole (largest remainders first): the
same examples every time, the balance kept, and a larger cap a superset of a smaller one.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol, TypeVar


class Labelled(Protocol):
    completion: str


T = TypeVar("T", bound=Labelled)


def stratified_take(examples: list[T], limit: int | None, stratify: bool = True) -> list[T]:
    """At most `limit` of `examples`, each completion (stripped) in proportion, order kept.

    `stratify=False` (a generative split, whose completions are all different): the first
    `limit`, as the split's shuffled order has them (by completion they would be taken in
    alphabetical order)."""
    if limit is None or limit >= len(examples):
        return examples
    if not stratify:
        return examples[:limit]
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        groups[example.completion.strip()].append(index)
    shares = {key: limit * len(group) / len(examples) for key, group in groups.items()}
    counts = {key: int(share) for key, share in shares.items()}
    by_remainder = sorted(groups, key=lambda key: (counts[key] - shares[key], key))
    for key in by_remainder[: limit - sum(counts.values())]:
        counts[key] += 1
    kept = sorted(index for key, group in groups.items() for index in group[: counts[key]])
    return [examples[index] for index in kept]
