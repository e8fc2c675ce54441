"""A completed trial as the decision rules see it: its objective values, its constraint
violations, every figure, and the evidence those figures rest on (for paired tests); made from
the study's typed records (`candidates`), or with the confirmation round's figures in place of
the search-time ones (`confirmed_candidates`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from autotune.decisions.record import TrialRecord
from autotune.spaces import Constraint, Space, interval_of, metric_column

Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Evidence:
    """What a candidate's figures rest on: per-example correctness ('0101...', eval order), the
    per-example scores of each quality figure (`rouge_l` -> one score per eval example, eval
    order; a derived figure holds the scores it is a difference of), the latency repeats by
    figure (`decode_ms` -> samples), 95% intervals by column."""

    correct: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.correct and "accuracy" not in self.scores:  # right or wrong: accuracy's scores
            bits = [1.0 if c == "1" else 0.0 for c in self.correct]
            object.__setattr__(self, "scores", {**self.scores, "accuracy": bits})


@dataclass(frozen=True)
class Candidate:
    """A completed trial as the selection sees it."""

    number: int
    values: dict[str, float]  # objective name -> value
    violations: dict[str, float]  # constraint -> violation (<= 0 means met)
    figures: dict[str, float] = field(default_factory=dict)  # every metric column
    evidence: Evidence = field(default_factory=Evidence)
    straddles: tuple[str, ...] = ()  # constraints met or missed inside the figure's interval

    @property
    def feasible(self) -> bool:
        return all(v <= 0 for v in self.violations.values())


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
        scores=per_example_scores(record, space),
    )


def per_example_scores(record: TrialRecord, space: Space) -> dict[str, list[float]]:
    """Each quality figure's per-example scores, under its own name and under the names of the
    figures that move with it: perplexity with nll, gain_over_base and quant_drop with the
    headline figure (against one reference, a difference is paired like the figure itself)."""
    scores = {name: list(values) for name, values in record.measured.get("scores", {}).items()}
    correct = record.measured.get("correct", "")
    if correct and "accuracy" not in scores:
        scores["accuracy"] = [1.0 if c == "1" else 0.0 for c in correct]
    for alias, source in (
        ("perplexity", "nll"),
        ("gain_over_base", space.headline_metric()),
        ("quant_drop", space.headline_metric()),
    ):
        if source in scores:
            scores[alias] = scores[source]
    return scores


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
