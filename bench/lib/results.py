"""One JSON file per benchmark run: its figures and what they were measured on (the commit, the
machine, the date, the command line, the wall time), so that a figure quoted in the docs can be
traced to the code and the machine that produced it, and run again."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from autotune.evaluators.environment import describe

BENCH = Path(__file__).resolve().parents[1]
RESULTS = BENCH / "results"
# A folder to write results to instead of bench/results (a GPU machine's $OUT, a test's scratch).
RESULTS_ENV = "BENCH_RESULTS"
LOADED = time.monotonic()


def commit(repo: Path = BENCH.parent) -> dict[str, Any] | None:
    """HEAD, and whether tracked files differ from it; None outside a git checkout."""

    def git(*args: str) -> str:
        command = ["git", "-C", str(repo), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    try:
        sha = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"sha": sha, "dirty": dirty}


def wall_seconds() -> float:
    """Seconds since this process started (from /proc on Linux: start-up and imports count),
    else since this module was loaded."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time
        return float(Path("/proc/uptime").read_text().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.monotonic() - LOADED


def plain(value: Any) -> Any:
    """A JSON-ready form of what figures hold besides JSON's own types."""
    if hasattr(value, "item"):  # numpy and pandas scalars
        return value.item()
    if isinstance(value, Path | Fraction):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def result_path(folder: Path, name: str, when: datetime) -> Path:
    """`folder/<name>-<UTC date-time>.json`, with a counter when that name is taken."""
    stem = f"{name}-{when:%Y%m%dT%H%M%SZ}"
    path, count = folder / f"{stem}.json", 1
    while path.exists():
        count += 1
        path = folder / f"{stem}-{count}.json"
    return path


def write_result(name: str, figures: dict[str, Any], args: argparse.Namespace | None) -> Path:
    """Write one run's `figures` with its provenance under bench/results (or $BENCH_RESULTS);
    the file written. `args`: the parsed command line (its `target`, when it has one, says
    whether the machine description lists GPUs)."""
    when = datetime.now(UTC)
    arguments = vars(args) if args is not None else {}
    record = {
        "name": name,
        "date": when.isoformat(timespec="seconds"),
        "command": shlex.join(sys.orig_argv),
        "arguments": arguments,
        "wall_s": round(wall_seconds(), 2),
        "commit": commit(),
        "machine": describe(str(arguments.get("target") or "cpu")),
        "figures": figures,
    }
    folder = Path(os.environ.get(RESULTS_ENV) or RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    path = result_path(folder, name, when)
    path.write_text(json.dumps(record, indent=2, default=plain) + "\n")
    print(f"result: {path}")
    return path
