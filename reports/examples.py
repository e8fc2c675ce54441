"""What the models said: a few eval examples, the same rows for every model so they compare,
read from each trial's generations (trials/<n>/generations.jsonl) and the untrained base's
(reference/generations.jsonl). Rows: {"prompt", "reference", "prediction", "scores"}.

A run folder without those files (an older run, a shared study reported elsewhere) has no
examples: the section is left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from autotune.reports.document import Block, Heading, Table, Text
from autotune.reports.quality import collapsed_trials, headline
from autotune.reports.results import RunResults
from autotune.spaces import fmt

EXAMPLES = 5  # eval rows shown per model: the first ones, in eval order
MAX_TRIALS = 4  # top-tier trials shown beside the base; the rest are named, not shown
PROMPT_CHARS = 120
TEXT_CHARS = 200

Row = dict[str, Any]


def read_generations(path: Path) -> list[Row] | None:
    """The rows of a generations.jsonl file; None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError):
        return None


def trial_generations(folder: Path | None, number: int) -> list[Row] | None:
    if folder is None:
        return None
    return read_generations(folder / "trials" / str(number) / "generations.jsonl")


def base_generations(folder: Path | None) -> list[Row] | None:
    if folder is None:
        return None
    return read_generations(folder / "reference" / "generations.jsonl")


def shortened(text: str, limit: int, keep_end: bool = False) -> str:
    """One line: newlines shown as ↵, runs of spaces squeezed, at most `limit` characters
    (with `keep_end` the start and the end of a long text, where a chat prompt's question is)."""
    line = " ↵ ".join(" ".join(part.split()) for part in str(text).strip().split("\n"))
    if len(line) <= limit:
        return line
    if keep_end:
        head = limit // 3
        return f"{line[:head]} … {line[-(limit - head - 3) :]}"
    return line[: limit - 1] + "…"


def score(row: Row, name: str) -> float | None:
    """The row's score on `name` (its first score when it lacks that one)."""
    scores = row.get("scores") or {}
    if name in scores:
        return scores[name]
    return next(iter(scores.values()), None)


def top_tier(results: RunResults) -> list[int]:
    """The top tier's trial numbers, the selected one first."""
    selection = results.selection
    tier = selection.tiers[0] if selection.tiers else selection.front
    chosen = selection.chosen.number if selection.chosen else None
    return sorted((c.number for c in tier), key=lambda n: (n != chosen, n))


def examples_frame(
    models: list[tuple[str, list[Row]]], name: str, count: int = EXAMPLES
) -> pd.DataFrame:
    """One table: for each of the first `count` eval rows, its prompt and reference, then each
    model's prediction and its score on `name`."""
    shown = min(count, *(len(rows) for _, rows in models))
    first = models[0][1]
    table = []
    for index in range(shown):
        example = index + 1
        table.append(
            {
                "example": example,
                "who": "prompt",
                "text": shortened(first[index].get("prompt", ""), PROMPT_CHARS, keep_end=True),
                name: "",
            }
        )
        reference = shortened(first[index].get("reference", ""), TEXT_CHARS)
        table.append({"example": example, "who": "reference", "text": reference, name: ""})
        for label, rows in models:
            row = rows[index]
            table.append(
                {
                    "example": example,
                    "who": label,
                    "text": shortened(row.get("prediction", ""), TEXT_CHARS),
                    name: fmt(score(row, name), 3),
                }
            )
    return pd.DataFrame(table, columns=["example", "who", "text", name])


def models_shown(results: RunResults) -> tuple[list[tuple[str, list[Row]]], list[int]]:
    """(label, rows) for the base and the top tier's trials that left generations (the
    collapsed trials when there is no top tier), and the trials left out for room."""
    chosen = results.selection.chosen.number if results.selection.chosen else None
    models: list[tuple[str, list[Row]]] = []
    base = base_generations(results.folder)
    if base:
        models.append(("untrained base", base))
    numbers, note = top_tier(results), ""
    if not numbers:  # nothing selectable: what the collapsed trials said is why
        numbers, note = sorted(collapsed_trials(results.records, results.selection)), " (collapsed)"
    trials = []
    for number in numbers:
        rows = trial_generations(results.folder, number)
        if rows:
            selected = " (selected)" if number == chosen else note
            trials.append((f"trial {number}{selected}", rows))
    left_out = [int(label.split()[1]) for label, _ in trials[MAX_TRIALS:]]
    return models + trials[:MAX_TRIALS], left_out


def example_blocks(results: RunResults) -> list[Block]:
    """The examples section; [] when no model left its generations."""
    models, left_out = models_shown(results)
    if not models:
        return []
    name = headline(results.space)
    frame = examples_frame(models, name)
    count = frame["example"].nunique()
    text = (
        f"The first {count} eval examples (the same for every model): the prompt (shortened), "
        "the reference, and what the untrained base and the top tier's trials (the collapsed "
        f"ones, when none was selectable) answered, with each answer's {name}. Every trial's "
        "answers are in trials/<n>/generations.jsonl."
    )
    if left_out:
        text += f" Trials not shown here: {', '.join(map(str, left_out))}."
    return [
        Heading("What the models said"),
        Text(text),
        Table(frame, "Eval examples and answers"),
    ]


def card_examples(results: RunResults, number: int, count: int = EXAMPLES) -> pd.DataFrame | None:
    """Trial `number`'s first eval examples for its model card; None without its generations."""
    rows = trial_generations(results.folder, number)
    if not rows:
        return None
    name = headline(results.space)
    return pd.DataFrame(
        [
            {
                "prompt": shortened(row.get("prompt", ""), PROMPT_CHARS, keep_end=True),
                "reference": shortened(row.get("reference", ""), TEXT_CHARS),
                "prediction": shortened(row.get("prediction", ""), TEXT_CHARS),
                name: fmt(score(row, name), 3),
            }
            for row in rows[:count]
        ],
        columns=["prompt", "reference", "prediction", name],
    )
