"""Reading data files into records, each with where it came from (`line 7`, `row 7`).

json, jsonl and csv are parsed with the standard library and parquet with pyarrow, so that a
broken file is one error naming the file, the line and what was expected, before anything
trains (`datasets` gave a traceback, and trained on a null as the text "None").
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.spaces import SpaceError

# What each kind of file should hold, said when it holds no record.
_EXPECTED = {
    ".jsonl": "expected one JSON object per line",
    ".json": "expected a list of JSON objects, or one JSON object per line",
    ".csv": "expected a header line, then one line per record",
    ".parquet": "expected a table with one row per record",
}
_JSON_SPACE = " \t\n\r"


@dataclass(frozen=True)
class Record:
    """One record of a data file and where it is (`line 7`, `row 7` for parquet), for errors."""

    path: Path
    where: str
    values: dict[str, Any]

    def error(self, message: str) -> SpaceError:
        return SpaceError(self.path, self.where, message)


def load_records(paths: list[Path]) -> list[Record]:
    """Every record of the data files, in file order; a file without one is an error."""
    records: list[Record] = []
    for path in paths:
        suffix = path.suffix.lower()
        if suffix not in _EXPECTED:
            raise SpaceError(path, "", "expected a .json, .jsonl, .csv or .parquet file")
        if suffix == ".parquet":
            found = _parquet_records(path)
        else:
            found = _TEXT_READERS[suffix](path, _read_text(path))
        if not found:
            raise SpaceError(path, "", f"no records; {_EXPECTED[suffix]}")
        records.extend(found)
    return records


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SpaceError(path, "", f"cannot be read: {error.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SpaceError(
            path, f"line {line}", f"expected UTF-8 text, found the byte {data[error.start]:#04x}"
        ) from None


_KINDS = {type(None): "null", bool: "true/false", str: "a string", int: "a number"}
_KINDS |= {float: "a number", list: "a list", tuple: "a list", dict: "an object"}


def kind(value: Any) -> str:
    """A value's JSON kind in words (null, a string, a list, ...)."""
    return _KINDS.get(type(value), type(value).__name__)


def _object(path: Path, where: str, value: Any) -> Record:
    if not isinstance(value, dict):
        raise SpaceError(
            path, where, f'expected a JSON object such as {{"field": "value"}}, got {kind(value)}'
        )
    return Record(path, where, value)


def _json_error(path: Path, error: json.JSONDecodeError, line: int | None = None) -> SpaceError:
    where = f"line {line if line is not None else error.lineno}"
    return SpaceError(path, where, f"not valid JSON: {error.msg} at column {error.colno}")


def _json_lines(path: Path, text: str) -> list[Record]:
    """One JSON object per line; blank lines are skipped.

    Split on newlines only: `str.splitlines` would also split inside strings holding U+2028.
    """
    records = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise _json_error(path, error, number) from None
        records.append(_object(path, f"line {number}", value))
    return records


def _json_file(path: Path, text: str) -> list[Record]:
    """A list of objects (each named by the line it starts on), or JSON lines."""
    if text.lstrip(_JSON_SPACE).startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise _json_error(path, error) from None
        lines = _element_lines(text)
        return [_object(path, f"line {n}", item) for n, item in zip(lines, items, strict=True)]
    if "\n" in text.strip():
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # JSON lines, checked line by line below
        if isinstance(whole, dict):
            raise SpaceError(path, "line 1", f"holds a single JSON object; {_EXPECTED['.json']}")
    return _json_lines(path, text)


def _element_lines(text: str) -> list[int]:
    """The line each element of a valid JSON array starts on."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    line, counted = 1, 0

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in _JSON_SPACE:
            pos += 1
        return pos

    pos = skip(text.index("[") + 1)
    while text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        lines.append(line)
        _, end = decoder.raw_decode(text, pos)
        pos = skip(end)
        if text[pos] == ",":
            pos = skip(pos + 1)
    return lines


def _csv_records(path: Path, text: str) -> list[Record]:
    """A header line, then one line per record with as many fields; blank lines are skipped.

    An empty cell is a missing value (None), as `datasets` and pandas read it."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[Record] = []
    header: list[str] | None = None
    header_at = "line 1"
    start = 1  # the line the next row starts on (a quoted field may span lines)
    try:
        for row in reader:
            where, start = f"line {start}", reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if header is None:
                header, header_at = row, where
                repeated = [name for name, n in Counter(row).items() if n > 1]
                if repeated:
                    raise SpaceError(path, where, f"the header names {repeated[0]!r} twice")
            elif len(row) != len(header):
                raise SpaceError(
                    path,
                    where,
                    f"has {len(row)} fields; expected {len(header)} like the header "
                    f"({header_at}: {header})",
                )
            else:
                values = {name: cell or None for name, cell in zip(header, row, strict=True)}
                records.append(Record(path, where, values))
    except csv.Error as error:
        raise SpaceError(path, f"line {reader.line_num}", f"not valid CSV: {error}") from None
    return records


_TEXT_READERS = {".jsonl": _json_lines, ".json": _json_file, ".csv": _csv_records}


def _parquet_records(path: Path) -> list[Record]:
    """Rows of a parquet table, read with pyarrow: quiet, and a table without rows is no error
    here (`datasets` logs to stderr and fails on one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise SpaceError(path, "", f"not a readable parquet file: {message}") from None
    return [Record(path, f"row {n}", row) for n, row in enumerate(rows, 1)]
