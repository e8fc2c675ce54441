"""The deployment bundle: the chosen model's folder, its model card (README.md) and
`selection.json` saying what was chosen, why, and under which constraints."""

from __future__ import annotations

import json
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from autotune.decisions.selection import Selection
from autotune.errors import UsageError
from autotune.reports.model_card import model_card
from autotune.reports.results import RunResults
from autotune.spaces import Constraint, is_metric_column

# Files of ours in a cache entry that are not part of the deployable model.
_NOT_SHIPPED = ("autotune_manifest.json",)


def write_selected(
    results: RunResults,
    selection: Selection,
    out: Path,
    constraints: list[Constraint] | None = None,
    ranking: list[int] | None = None,
) -> Path | None:
    """Replace `out` with the chosen model, README.md and selection.json; None when nothing was
    chosen. `constraints` default to the study's; `ranking` is the front in ranked order."""
    chosen = selection.chosen
    row = results.row(chosen.number) if chosen is not None else None
    source = Path(str(row["onnx_dir"])) if row is not None else None
    if source is not None and not (source / "genai_config.json").is_file():
        worker = str(row.get("worker") or "")
        if worker and worker.split(":")[0] != socket.gethostname():
            raise UsageError(
                f"the model of trial {chosen.number} was built on another machine (worker "
                f"{worker}, {source}); select it there, or give the workers one shared --cache"
            )
        raise UsageError(
            f"the model folder of trial {chosen.number} is gone ({source}); was the cache pruned? "
            "Run the study again to rebuild it"
        )
    if out.exists():
        shutil.rmtree(out)
    if chosen is None or source is None:
        return None
    constraints = results.space.parsed_constraints() if constraints is None else constraints
    shutil.copytree(source, out, ignore=shutil.ignore_patterns(*_NOT_SHIPPED))
    metrics = {k: _plain(row[k]) for k in row.index if _is_metric(k) and pd.notna(row[k])}
    info = selection_info(results, selection, constraints, metrics, ranking)
    (out / "selection.json").write_text(json.dumps(info, indent=2))
    card = model_card(results, chosen.number, selection.reason, constraints, metrics)
    (out / "README.md").write_text(card)
    return out


def selection_info(
    results: RunResults,
    selection: Selection,
    constraints: list[Constraint],
    metrics: dict[str, float],
    ranking: list[int] | None,
) -> dict[str, Any]:
    space, chosen = results.space, selection.chosen
    assert chosen is not None
    row = results.row(chosen.number)
    knobs = [k for k in row.index if k in space.search or k == "lora_alpha"]
    return {
        "space": space.name,
        "target": results.target,
        "run": results.label,
        "trial": chosen.number,
        "reason": selection.reason,
        "objectives": {
            name: {"direction": d, "value": chosen.values[name]}
            for name, d in space.objectives.items()
        },
        "constraints": {
            name: {"violation": v, "met": v <= 0} for name, v in chosen.violations.items()
        },
        "constraints_applied": [str(c) for c in constraints],
        "params": {k: _plain(row[k]) for k in knobs if pd.notna(row[k])},
        "metrics": metrics,
        "measured": results.measured(chosen.number),
        "front": [c.number for c in selection.front],
        "tiers": [sorted(c.number for c in tier) for tier in selection.tiers],
        "tied": sorted(c.number for c in selection.ties),
        "ranking": ranking if ranking is not None else [c.number for c in selection.front],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _is_metric(column: str) -> bool:
    return is_metric_column(column) or column in ("train_loss", "eval_loss")


def _plain(value):
    return value.item() if hasattr(value, "item") else value
