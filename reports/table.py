"""The trials table: one row per trial with its parameters, metrics, stage times, the reason it
failed or was pruned or its predictions collapsed, and where it came from (a sibling of trial n,
a retry of trial n).

The table is made from the study's typed `TrialRecord`s (decisions/record.py), as the
candidates the selection sees are (decisions/candidate.py); feasibility is what the study stored
with each completed trial.
"""

from __future__ import annotations

import pandas as pd

from autotune.decisions.record import TrialRecord


def trials_frame(records: list[TrialRecord]) -> pd.DataFrame:
    """Every trial as a row (completed, failed, pruned or running)."""
    rows = []
    for record in records:
        row: dict = {"number": record.number, "state": record.state}
        row.update(record.params)
        row.update(record.metrics)
        row.update({f"seconds.{k}": v for k, v in record.seconds.items()})
        if record.complete:
            row["feasible"] = record.feasible
        export = record.measured.get("export") or {}
        for part in ("embed_tokens", "lm_head"):  # what the export did, not what it was asked
            if part in export:
                row[f"export.{part}"] = export[part]
        row["error"] = record.reason
        collapse = record.measured.get("collapse") or {}
        if collapse.get("flagged"):  # why its `collapsed` figure is 1 (evaluators/collapse.py)
            row["collapse"] = collapse.get("reason", "")
        row["sibling_of"] = record.sibling_of
        row["retry_of"] = record.retry_of
        row["worker"] = record.worker
        row["onnx_dir"] = record.onnx_dir
        rows.append(row)
    return pd.DataFrame(rows)
