"""A report as a list of blocks (headings, text, lists, tables, figures), written once and
rendered to Markdown here and to HTML by reports/html.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from autotune.spaces import fmt


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""


@dataclass(frozen=True)
class Image:
    path: Path  # a PNG file; Markdown links it, HTML embeds it
    alt: str


Block = Heading | Text | Bullets | Table | Image


def cell(value) -> str:
    """A table cell: floats to 4 significant digits, missing values empty."""
    return fmt(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table."""

    def escaped(value) -> str:
        return cell(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join(escaped(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def to_markdown(blocks: list[Block], folder: Path) -> str:
    """The blocks as Markdown; images are linked relative to `folder` (where the file goes)."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Text):
            parts.append(block.text)
        elif isinstance(block, Bullets):
            parts.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            table = markdown_table(block.frame) if len(block.frame) else "(none)"
            parts.append(f"{block.caption}\n\n{table}" if block.caption else table)
        elif isinstance(block, Image):
            parts.append(f"![{block.alt}]({_relative(block.path, folder)})")
    return "\n\n".join(parts) + "\n"


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()
