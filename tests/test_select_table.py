"""The table `autotune select` prints: every value under its own column, whatever keys each
ranked row has (a trial exported at fp32 has no int4 block size, one at int4 has)."""

from __future__ import annotations

import io

from rich.console import Console

from autotune.console.ranking import columns, ranking_table

# As `autotune select` ranks them on the tiny space: the best trial was exported at fp32, so its
# row has no int4 knobs; the second was exported at int4 and has both.
FP32 = {
    "rank": 1,
    "trial": 3,
    "tied": False,
    "lora_r": 16,
    "learning_rate": 0.0021,
    "precision": "fp32",
    "accuracy": 0.75,
    "e2e_ms.p50": 2.5,
}
INT4 = {
    "rank": 2,
    "trial": 16,
    "tied": True,
    "lora_r": 32,
    "learning_rate": 0.0009,
    "precision": "int4",
    "int4_block_size": 128,
    "int4_accuracy_level": 4,
    "accuracy": 0.625,
    "e2e_ms.p50": 1.5,
}


def rendered(rows: list[dict]) -> list[dict[str, str]]:
    """The printed table read back: one {header: cell} per row."""
    console = Console(file=io.StringIO(), width=200, highlight=False)
    console.print(ranking_table("ranking", rows))
    lines = console.file.getvalue().splitlines()
    header = next(line for line in lines if "┃" in line)
    names = [cell.strip() for cell in header.split("┃")[1:-1]]
    body = [line for line in lines if line.startswith("│")]
    return [
        dict(zip(names, (cell.strip() for cell in line.split("│")[1:-1]), strict=True))
        for line in body
    ]


def test_each_value_sits_under_its_own_column_whatever_keys_a_row_has():
    for rows in ([FP32, INT4], [INT4, FP32]):
        shown = {row["trial"]: row for row in rendered(rows)}
        assert shown["16"]["accuracy"] == "0.625" and shown["16"]["e2e_ms.p50"] == "1.5"
        assert shown["16"]["int4_block_size"] == "128"
        assert shown["16"]["int4_accuracy_level"] == "4"
        assert shown["3"]["accuracy"] == "0.75" and shown["3"]["e2e_ms.p50"] == "2.5"
        assert shown["3"]["int4_block_size"] == shown["3"]["int4_accuracy_level"] == ""
        assert "" not in shown["3"] and "" not in shown["16"]  # no column without a name


def test_a_key_the_first_rows_lack_comes_after_the_key_it_follows():
    assert columns([FP32, INT4]) == list(INT4)
    assert columns([INT4, FP32]) == list(INT4)
    rows = [{"a": 1, "c": 3}, {"a": 1, "b": 2, "c": 3}, {"c": 3, "d": 4}]
    assert columns(rows) == ["a", "b", "c", "d"]
