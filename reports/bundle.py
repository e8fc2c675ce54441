"""The deployment candidate: the selected model's folder with `selection.json` saying why."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from autotune.search.pareto import Selection
from autotune.search.space import Space, is_metric_column

# Files of ours in a cache entry that are not part of the deployable model.
_NOT_SHIPPED = ("autotune_manifest.json",)


def write_selected(
    space: Space, target: str, frame: pd.DataFrame, selection: Selection, out: Path
) -> Path | None:
    """Copy the chosen model to `out` and write selection.json; None when nothing was chosen."""
    if out.exists():
        shutil.rmtree(out)
    chosen = selection.chosen
    if chosen is None:
        return None
    row = frame[frame["number"] == chosen.number].iloc[0]
    shutil.copytree(row["onnx_dir"], out, ignore=shutil.ignore_patterns(*_NOT_SHIPPED))
    knobs = [k for k in row.index if k in space.search or k == "lora_alpha"]
    params = {k: _plain(row[k]) for k in knobs if pd.notna(row[k])}
    selection_info = {
        "space": space.name,
        "target": target,
        "trial": chosen.number,
        "reason": selection.reason,
        "objectives": {
            name: {"direction": d, "value": chosen.values[name]}
            for name, d in space.objectives.items()
        },
        "constraints": {
            name: {"violation": v, "met": v <= 0} for name, v in chosen.violations.items()
        },
        "params": params,
        "metrics": {k: _plain(row[k]) for k in row.index if _is_metric(k) and pd.notna(row[k])},
        "front": [c.number for c in selection.front],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / "selection.json").write_text(json.dumps(selection_info, indent=2))
    return out


def _is_metric(column: str) -> bool:
    return is_metric_column(column) or column in ("train_loss", "eval_loss")


def _plain(value):
    return value.item() if hasattr(value, "item") else value
