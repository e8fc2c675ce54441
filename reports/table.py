"""The trials table: one row per trial with its parameters, metrics, stage times, the reason it
failed or was pruned, and where it came from (a sibling of trial n, a retry of trial n)."""

from __future__ import annotations

import math

import optuna
import pandas as pd
from autotune.search.pareto import Candidate
from autotune.search.resume import STALE
from autotune.search.space import Space, metric
from autotune.search.workers import WORKER


def trials_frame(study: optuna.Study, space: Space) -> pd.DataFrame:
    """Every trial of the study as a row (completed, failed, pruned or running)."""
    constraints = space.parsed_constraints()
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        row: dict = {"number": trial.number, "state": trial.state.name}
        row.update(attrs.get("params", trial.params))
        metrics = attrs.get("metrics", {})
        row.update(metrics)
        row.update({f"seconds.{k}": v for k, v in attrs.get("seconds", {}).items()})
        if trial.state == optuna.trial.TrialState.COMPLETE:
            row["feasible"] = all(
                c.violation(metric(metrics, c.metric, space)) <= 0 for c in constraints
            )
        row["error"] = (
            attrs.get("error")
            or attrs.get("pruned")
            or trial.system_attrs.get("fail_reason", "")
            or (STALE if trial.state == optuna.trial.TrialState.FAIL else "")
        )
        row["sibling_of"] = attrs.get("sibling_of")
        row["retry_of"] = attrs.get("retry_of")
        row["worker"] = attrs.get(WORKER, "")
        row["onnx_dir"] = attrs.get("onnx_dir", "")
        rows.append(row)
    return pd.DataFrame(rows)


def candidates(frame: pd.DataFrame, space: Space) -> list[Candidate]:
    """The completed trials of a trials table, as the selection sees them."""
    constraints = space.parsed_constraints()
    result = []
    for _, row in frame[frame["state"] == "COMPLETE"].iterrows():
        metrics = {k: v for k, v in row.items() if isinstance(v, float) and not math.isnan(v)}
        result.append(
            Candidate(
                number=int(row["number"]),
                values={name: metric(metrics, name, space) for name in space.objectives},
                violations={
                    str(c): c.violation(metric(metrics, c.metric, space)) for c in constraints
                },
            )
        )
    return result
