"""The checks of bench/kill_resume.py on a study resumed after `kill -9`: completed trials kept,
the budget met exactly, interrupted trials retried, and every cache entry complete."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.candidates.cache import MANIFEST, TMP_PREFIX, list_entries
from autotune.candidates.train import resolve_dtype
from autotune.evaluators.environment import versions
from autotune.search.record import Attr
from autotune.search.stages import merged_key
from autotune.search.workers.recovery import INTERRUPTED
from bench.lib.tiny_models import tiny_space


@dataclass(frozen=True)
class TrialView:
    """What the checks need of one trial of the study."""

    number: int
    state: str
    values: tuple[float, ...] | None
    params: dict[str, Any]
    attrs: dict[str, Any]


def check_kept(before: dict[int, TrialView], after: dict[int, TrialView]) -> str:
    changed = [
        n
        for n, t in before.items()
        if t.state == "COMPLETE"
        and (after[n].state, after[n].values, after[n].params) != (t.state, t.values, t.params)
    ]
    return f"trials {changed} changed" if changed else ""


def check_budget(after: dict[int, TrialView], budget: int) -> str:
    complete = sum(t.state == "COMPLETE" for t in after.values())
    return "" if complete == budget else f"{complete} COMPLETE, budget {budget}"


def check_retried(before: dict[int, TrialView], after: dict[int, TrialView]) -> str:
    problems = []
    for number in (n for n, t in before.items() if t.state == "RUNNING"):
        if after[number].state != "FAIL" or after[number].attrs.get("error") != INTERRUPTED:
            problems.append(f"trial {number} is {after[number].state}, not FAIL interrupted")
        retries = [t for t in after.values() if t.attrs.get("retry_of") == number]
        params = before[number].params
        if not any(t.state == "COMPLETE" and t.params == params for t in retries):
            states = ", ".join(f"{t.number} {t.state}" for t in retries) or "none"
            problems.append(f"trial {number} not re-run to completion (retries: {states})")
    return "; ".join(problems)


def entry_problems(trial: TrialView, out: Path, cache: Path) -> list[str]:
    """The cache entries a completed trial used that are not complete entries."""
    key = trial.attrs.get(Attr.ADAPTER_KEY, "")
    onnx = Path(trial.attrs.get("onnx_dir", ""))
    used = {
        "adapter": cache / "adapter" / key,
        "merged": cache
        / "merged"
        / merged_key(key, resolve_dtype(tiny_space().train.dtype), versions()),
        "onnx": onnx,
    }
    problems = [
        f"trial {trial.number} {stage} {path.name}"
        for stage, path in used.items()
        if path.name.startswith(TMP_PREFIX) or not (path / MANIFEST).is_file()
    ]
    if measure_entry(out / "trials" / str(trial.number) / "measurement.json", cache) is None:
        problems.append(f"trial {trial.number} measurement matches no complete entry")
    return problems


def measure_entry(measurement: Path, cache: Path) -> Path | None:
    """The complete measure entry whose measurement.json is the trial's."""
    wanted = json.loads(measurement.read_text())
    for entry in (cache / "measure").iterdir():
        file = entry / "measurement.json"
        complete = (entry / MANIFEST).is_file() and file.is_file()
        if complete and json.loads(file.read_text()) == wanted:
            return entry
    return None


def check_entries(after: dict[int, TrialView], out: Path, cache: Path) -> str:
    problems = [
        p for t in after.values() if t.state == "COMPLETE" for p in entry_problems(t, out, cache)
    ]
    return "; ".join(problems)


def unfinished_entries(cache: Path) -> set[str]:
    """Build folders and entries without a manifest, as stage/name."""
    if not cache.is_dir():
        return set()
    return {f"{e.stage}/{e.path.name}" for e in list_entries(cache) if not e.complete}
