"""A classification, label by label: precision, recall and the confusion matrix of one model's
predictions against the references (from its generations.jsonl), for the selected trial and the
untrained base. Accuracy and macro-F1 say how often; these say which labels it mixes up."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from autotune.reports.document import Block, Heading, Table, Text
from autotune.reports.examples import Row, base_generations, trial_generations
from autotune.reports.results import RunResults


@dataclass(frozen=True)
class Confusion:
    """counts[i][j]: eval examples whose reference is labels[i] and prediction labels[j]."""

    labels: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    def right(self, label: str) -> int:
        i = self.labels.index(label)
        return self.counts[i][i]

    def references(self, label: str) -> int:
        return sum(self.counts[self.labels.index(label)])

    def predicted(self, label: str) -> int:
        j = self.labels.index(label)
        return sum(row[j] for row in self.counts)

    def precision(self, label: str) -> float:
        """Of the examples predicted `label`, the share that are; NaN when none was."""
        predicted = self.predicted(label)
        return self.right(label) / predicted if predicted else math.nan

    def recall(self, label: str) -> float:
        """Of the examples that are `label`, the share predicted so; NaN when none is."""
        references = self.references(label)
        return self.right(label) / references if references else math.nan


def confusion_of(predictions: list[str], references: list[str], labels: list[str]) -> Confusion:
    """The confusion of `predictions` against `references` (compared without surrounding
    whitespace); a text outside `labels` gets a row and a column of its own, after them."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions against {len(references)} references")
    predicted = [p.strip() for p in predictions]
    expected = [r.strip() for r in references]
    order = list(dict.fromkeys([*(label.strip() for label in labels), *expected, *predicted]))
    index = {label: i for i, label in enumerate(order)}
    counts = [[0] * len(order) for _ in order]
    for reference, prediction in zip(expected, predicted, strict=True):
        counts[index[reference]][index[prediction]] += 1
    return Confusion(tuple(order), tuple(tuple(row) for row in counts))


def of_rows(rows: list[Row], labels: list[str]) -> Confusion:
    return confusion_of(
        [str(r.get("prediction", "")) for r in rows],
        [str(r.get("reference", "")) for r in rows],
        labels,
    )


def per_label_frame(confusion: Confusion) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "label": label,
                "references": confusion.references(label),
                "predicted": confusion.predicted(label),
                "right": confusion.right(label),
                "precision": confusion.precision(label),
                "recall": confusion.recall(label),
            }
            for label in confusion.labels
        ]
    )


def matrix_frame(confusion: Confusion) -> pd.DataFrame:
    """Rows: the reference label; columns: the predicted label."""
    return pd.DataFrame(
        [
            {"reference \\ predicted": label, **dict(zip(confusion.labels, row, strict=True))}
            for label, row in zip(confusion.labels, confusion.counts, strict=True)
        ]
    )


def confusion_blocks(results: RunResults) -> list[Block]:
    """Per label, for the selected trial and the base; [] for generations or without files."""
    labels = results.space.data.labels
    if not labels:
        return []
    models = []
    chosen = results.selection.chosen
    if chosen is not None and (rows := trial_generations(results.folder, chosen.number)):
        models.append((f"trial {chosen.number} (selected)", rows))
    if rows := base_generations(results.folder):
        models.append(("untrained base", rows))
    if not models:
        return []
    blocks: list[Block] = [
        Heading("Per label"),
        Text(
            "Precision: of the eval examples a model labelled so, the share that are; recall: of "
            "those that are, the share it labelled so (blank where there is none to count). The "
            "confusion matrix counts eval examples by reference (rows) and prediction (columns)."
        ),
    ]
    for label, rows in models:
        confusion = of_rows(rows, labels)
        blocks += [
            Table(per_label_frame(confusion), f"{label}: precision and recall per label"),
            Table(matrix_frame(confusion), f"{label}: confusion matrix"),
        ]
    return blocks
