"""`--json`: a machine-readable summary of the study on stdout, and nothing else there."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from autotune.reports.outputs import RunOutputs
from autotune.spaces import Space


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (Python or native code) to stderr inside the block."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def json_summary(space: Space, target: str, out: Path, outputs: RunOutputs) -> dict:
    """What --json prints: the trial counts, the selected trial with its figures, the paths."""
    chosen = outputs.selection.chosen
    states = ("COMPLETE", "PRUNED", "FAIL", "WAITING")
    counts = {s.lower(): sum(r.state == s for r in outputs.records) for s in states}
    selected = None
    if chosen is not None:
        record = outputs.records[chosen.number]
        selected = {
            "trial": chosen.number,
            "reason": outputs.selection.reason,
            "params": record.params,
            "objectives": chosen.values,
            "metrics": record.metrics,
            "path": str(outputs.selected) if outputs.selected else None,
        }
    base = outputs.reference
    reference = None
    if base is not None:  # the untrained base, measured like a candidate, never selected
        reference = {"params": base.params, "metrics": base.metrics}
    return {
        "space": space.name,
        "target": target,
        "out": str(out),
        "trials": counts,
        "selected": selected,
        "selection": outputs.selection.reason,
        "reference": reference,
        "files": {
            "report_html": str(outputs.report_html),
            "report_md": str(outputs.report_md),
            "trials_csv": str(outputs.trials_csv),
            "trials_parquet": str(outputs.trials_parquet),
            **{f"{name}_png": str(path) for name, path in outputs.figures.items()},
        },
    }
