"""The trials table: one row per trial with its parameters, metrics, stage times, the reason it
failed or was pruned, and where it came from (a sibling of trial n, a retry of trial n).

Both the table and the candidates the selection sees are made from the study's `TrialRecord`s
(search/record.py); feasibility is what the study stored with each completed trial.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from autotune.reports.pareto import Candidate, Evidence
from autotune.search.record import TrialRecord
from autotune.spaces import Constraint, Space, interval_of, metric_column


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
        row["sibling_of"] = record.sibling_of
        row["retry_of"] = record.retry_of
        row["worker"] = record.worker
        row["onnx_dir"] = record.onnx_dir
        rows.append(row)
    return pd.DataFrame(rows)


UNQUANTISED = ("fp32", "fp16")
INT4_KNOBS = ("int4_block_size", "int4_accuracy_level", "int4_algo")


def with_quant_drop(records: list[TrialRecord]) -> list[TrialRecord]:
    """The records, each quantised one that lacks `quant_drop` given it from its unquantised
    sibling (same training, same other export knobs) when that sibling was measured after it."""
    complete = [r for r in records if r.complete and "accuracy" in r.metrics]
    for record in complete:
        if "quant_drop" in record.metrics or record.params.get("precision") in UNQUANTISED:
            continue
        family = record.sibling_of if record.sibling_of is not None else record.number
        for other in complete:
            same_training = family in (other.number, other.sibling_of)
            same_knobs = all(
                other.params.get(k) == record.params.get(k)
                for k in record.params
                if k != "precision" and k not in INT4_KNOBS
            )
            if same_training and same_knobs and other.params.get("precision") in UNQUANTISED:
                drop = other.metrics["accuracy"] - record.metrics["accuracy"]
                record.metrics["quant_drop"] = drop
                break
    return records


def candidates(records: list[TrialRecord], space: Space) -> list[Candidate]:
    """The completed trials, as the selection sees them: objective values, the violations of
    the constraints the study stored, every figure, and the evidence the figures rest on."""
    stat = space.latency.stat
    constraints = [
        Constraint(metric=metric_column(c.metric, stat), op=c.op, bound=c.bound)
        for c in space.parsed_constraints()
    ]
    return [
        Candidate(
            number=record.number,
            values={name: space.metric(record.metrics, name) for name in space.objectives},
            violations=dict(record.constraints),
            figures=dict(record.metrics),
            evidence=evidence(record, space),
            straddles=straddled(record.metrics, constraints),
        )
        for record in records
        if record.complete
    ]


def evidence(record: TrialRecord, space: Space) -> Evidence:
    """Per-example correctness, latency repeats and the objectives' 95% intervals."""
    intervals = {}
    for name in space.objectives:
        found = interval_of(record.metrics, metric_column(name, space.latency.stat))
        if found is not None:
            intervals[name] = found
    return Evidence(
        correct=record.measured.get("correct", ""),
        samples=dict(record.measured.get("latency_samples", {})),
        intervals=intervals,
    )


def straddled(metrics: dict[str, float], constraints: list[Constraint]) -> tuple[str, ...]:
    """The constraints (on trials-table columns) whose bound lies inside the figure's 95%
    interval: met or missed, the measurement cannot say for sure."""
    found = []
    for constraint in constraints:
        interval = interval_of(metrics, constraint.metric)
        if interval is not None and interval[0] <= constraint.bound <= interval[1]:
            found.append(str(constraint))
    return tuple(found)


def confirmed_candidates(
    found: list[Candidate], round_: dict[str, Any] | None, space: Space
) -> list[Candidate]:
    """The candidates of the confirmation round (search/confirm.py), with its latency figures,
    repeats and intervals in place of their search-time ones, and the constraints judged on
    them; [] without a round."""
    if not round_:
        return []
    updated = []
    for candidate in found:
        key = str(candidate.number)
        if key not in round_["metrics"]:
            continue
        figures = {**candidate.figures, **round_["metrics"][key]}
        values = {name: space.metric(figures, name) for name in space.objectives}
        evidence = Evidence(
            correct=candidate.evidence.correct,
            samples=dict(round_["samples"][key]),
            intervals={
                **candidate.evidence.intervals,
                **{
                    name: interval
                    for name in space.objectives
                    if (interval := interval_of(figures, space.column(name))) is not None
                },
            },
        )
        violations = {
            str(c): c.violation(space.metric(figures, c.metric)) for c in space.parsed_constraints()
        }
        updated.append(
            replace(
                candidate,
                values=values,
                violations=violations,
                figures=figures,
                evidence=evidence,
            )
        )
    return updated
