"""The ranked candidates `autotune select` prints: one row per candidate, whose keys differ from
row to row (a parameter only some trials have, such as int4_block_size, is left out of the
others' rows), each value under the column of its own key."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from autotune.spaces.metrics import fmt


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of every row, once; each row's keys in its own order, so a key the first rows
    lack comes right after the key it follows in the row that has it."""
    names: list[str] = []
    for row in rows:
        at = 0
        for key in row:
            if key in names:
                at = names.index(key) + 1
            else:
                names.insert(at, key)
                at += 1
    return names


def ranking_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """The rows under the columns of all their keys; a row without a key has a blank there."""
    table = Table(title=title)
    names = columns(rows)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(fmt(row.get(name)) for name in names))
    return table
