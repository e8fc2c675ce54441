"""How far the measurements support the pick: the tiers, whether the top two can be told apart,
constraints met inside the noise, measurements flagged as noisy, and the confirmation round."""

from __future__ import annotations

import pandas as pd

from autotune.decisions.dominance import right_or_wrong
from autotune.reports.document import Block, Bullets, Heading, Table, Text
from autotune.reports.results import RunResults
from autotune.search.confirm import confirmed
from autotune.spaces import LATENCY_METRICS, fmt, split_metric

RULE = (
    "A candidate leaves the top tier only when another is at least as good on every objective "
    "and distinguishably better on one (paired on the eval examples: an exact McNemar test for a "
    "right/wrong figure such as {right}, a Wilcoxon signed-rank test for a graded one such as "
    "{graded}; a rank test on the repeats for latency; "
    "non-overlapping 95% intervals otherwise; 5% level). Among the top tier's candidates that "
    "cannot be told apart from its best {prefer}, the pick is the smallest on disk (to two "
    "significant figures), then the fastest, then the earliest trial. After a confirmation "
    "round the top tier and the pick come from the round's trials, on its figures; the tiers "
    "below are the search-time ones."
)


def certainty_blocks(results: RunResults) -> list[Block]:
    selection = results.selection
    if selection.chosen is None or not selection.tiers:
        return []
    prefer = results.space.preferred_objective()
    blocks: list[Block] = [
        Heading("How sure"),
        Text(RULE.format(prefer=prefer, **examples(results))),
        Table(tier_table(results), "Tiers of the feasible trials"),
        Bullets(findings(results)),
    ]
    round_table = confirmation_table(results)
    if round_table is not None:
        blocks += [
            Text(
                "The confirmation round timed the top tier again in turns (A B C A B C ...), "
                "under one machine state; the pick was made on its figures."
            ),
            Table(round_table, "Search-time and confirmation latency"),
        ]
    return blocks


def examples(results: RunResults) -> dict[str, str]:
    """The figures the rule names as examples: this kind of task's own."""
    if results.space.data.labels:
        return {"right": "accuracy", "graded": "nll or kl"}
    return {"right": "exact_match", "graded": "rouge_l, nll or kl"}


def tier_table(results: RunResults) -> pd.DataFrame:
    prefer = results.space.preferred_objective()
    ties = {c.number for c in results.selection.ties}
    rows = []
    for index, tier in enumerate(results.selection.tiers, start=1):
        numbers = sorted(c.number for c in tier)
        values = [c.values[prefer] for c in tier]
        rows.append(
            {
                "tier": index,
                "trials": ", ".join(f"{n}{'*' if n in ties else ''}" for n in numbers),
                f"{prefer} range": f"{fmt(min(values))} to {fmt(max(values))}",
            }
        )
    return pd.DataFrame(rows)


def findings(results: RunResults) -> list[str]:
    selection = results.selection
    prefer = results.space.preferred_objective()
    items = [
        f"Trials marked * cannot be told apart from the best {prefer} of the top tier: "
        f"{len(selection.ties)} of {len(selection.front)}; trial {selection.chosen.number} "
        "is the pick among them."
    ]
    separation = selection.separation
    if separation is not None:
        test = paired_test(results, prefer)
        if separation.p_value < 0.05:
            items.append(
                f"Trials {separation.first} and {separation.second}, the top two on {prefer}, "
                f"differ distinguishably ({test} p = {separation.p_value:.3g})."
            )
        elif separation.examples_needed is not None:
            items.append(
                f"Trials {separation.first} and {separation.second}, the top two on {prefer}, "
                f"cannot be told apart ({test} p = {separation.p_value:.3g}); at the "
                f"disagreement observed, about {separation.examples_needed} eval examples "
                "would separate them."
            )
        elif test != "McNemar":
            items.append(
                f"Trials {separation.first} and {separation.second}, the top two on {prefer}, "
                f"cannot be told apart ({test} p = {separation.p_value:.3g})."
            )
        else:
            items.append(
                f"Trials {separation.first} and {separation.second}, the top two on {prefer}, "
                "agree on every eval example where either is right: more examples would not "
                "separate them."
            )
    for candidate in selection.front:
        if candidate.straddles:
            items.append(
                f"Trial {candidate.number} meets {', '.join(candidate.straddles)} on its point "
                "estimate, but the bound lies inside the figure's 95% interval."
            )
    noisy = [r for r in results.records if r.complete and r.metrics.get("noise.flagged")]
    retried = [r for r in results.records if r.complete and r.metrics.get("noise.attempts", 1) > 1]
    if retried:
        items.append(
            f"{len(retried)} latency measurement(s) were taken again for outside load or spread "
            f"(trials {', '.join(str(r.number) for r in retried)})."
        )
    for record in noisy:
        reasons = "; ".join(record.measured.get("latency", {}).get("noisy", [])) or "noisy"
        items.append(f"Trial {record.number}'s latency stayed noisy after the retries: {reasons}.")
    return items


def paired_test(results: RunResults, prefer: str) -> str:
    """The paired test the top two were compared by: McNemar when their per-example scores
    on `prefer` are right/wrong, else Wilcoxon (decisions/dominance.py)."""
    figure = split_metric(prefer)[0]
    for candidate in results.selection.ties:
        scores = getattr(candidate.evidence, "scores", {}).get(figure)
        if scores and not right_or_wrong(scores):
            return "Wilcoxon"
    return "McNemar"


def confirmation_table(results: RunResults) -> pd.DataFrame | None:
    round_ = confirmed(results.study)
    if not round_:
        return None
    space = results.space
    names = [n for n in space.objectives if split_metric(n)[0] in LATENCY_METRICS]
    names = names or ["e2e_ms"]
    rows = []
    for key, metrics in round_["metrics"].items():
        searched = results.records[int(key)].metrics
        row: dict = {"trial": int(key)}
        for name in names:
            column = space.column(name)
            row[f"{column} search"] = searched.get(column)
            row[f"{column} confirmation"] = metrics.get(column)
        rows.append(row)
    return pd.DataFrame(rows)
