"""Several runs side by side: overlaid Pareto fronts, each run's selected and best-per-objective
candidates, and what differs (space, target, machine, and which run wins where).

Runs are compared on the first run's objectives, read from every run's trials table, while each
trial keeps its own run's feasibility. A quality figure ranks runs only when they scored the same
eval data by the same headline figure; otherwise the figures are shown, called not comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autotune.decisions.candidate import Candidate  # noqa: E402
from autotune.decisions.dominance import better_by, dominates, pareto_front  # noqa: E402
from autotune.reports.document import Block, Bullets, Heading, Image, Table, Text, to_markdown  # noqa: E402
from autotune.reports.html import to_html  # noqa: E402
from autotune.reports.hypervolume import objective_bounds, scaled_hypervolume  # noqa: E402
from autotune.reports.plot import save  # noqa: E402
from autotune.reports.quality import headline, is_quality  # noqa: E402
from autotune.reports.report import hardware  # noqa: E402
from autotune.reports.results import RunResults  # noqa: E402
from autotune.spaces import fmt, interval_of, metric_column  # noqa: E402

RUN_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860"]


@dataclass(frozen=True)
class Compared:
    """One run seen on the common objectives."""

    results: RunResults
    candidates: list[Candidate]  # completed trials: common objective values, own feasibility
    front: list[Candidate]  # feasible Pareto front on the common objectives

    @property
    def label(self) -> str:
        return self.results.label


@dataclass(frozen=True)
class CompareOutputs:
    html: Path
    markdown: Path
    figure: Path


def common_objectives(runs: list[RunResults]) -> dict[str, str]:
    """The first run's objectives as trials-table columns -> direction."""
    first = runs[0].space
    return {metric_column(n, first.latency.stat): d for n, d in first.objectives.items()}


def on_common(results: RunResults, objectives: dict[str, str]) -> Compared:
    own = {c.number: c for c in results.candidates}
    candidates = []
    for _, row in results.completed.iterrows():
        values = {name: float(row.get(name, float("nan"))) for name in objectives}
        if any(v != v for v in values.values()):  # a metric this run did not measure
            continue
        number = int(row["number"])
        mine = own[number]
        intervals = {
            name: interval
            for name in objectives
            if (interval := interval_of(mine.figures, name)) is not None
        }
        evidence = replace(mine.evidence, intervals=intervals)
        candidates.append(Candidate(number, values, mine.violations, mine.figures, evidence))
    feasible = [c for c in candidates if c.feasible]
    directions = list(objectives.values())
    points = [[c.values[n] for n in objectives] for c in feasible]
    front = [feasible[i] for i in pareto_front(points, directions)]
    return Compared(results, candidates, front)


def compare_runs(runs: list[RunResults], out: Path) -> CompareOutputs:
    """Write compare.html, compare.md and compare_pareto.png into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    objectives = common_objectives(runs)
    compared = [on_common(r, objectives) for r in runs]
    figure = save(overlay_figure(compared, objectives), out / "compare_pareto.png")
    labels = " vs ".join(r.label for r in runs)
    blocks: list[Block] = [
        Heading(f"autotune compare: {labels}", 1),
        Text(
            "Runs compared on the objectives of the first run, "
            + ", ".join(f"{k} ({v})" for k, v in objectives.items())
            + "; each trial is feasible or not under its own run's constraints."
        ),
        Heading("The runs"),
        Table(runs_table(compared, objectives)),
        Heading("Pareto fronts"),
        Image(figure, "Overlaid Pareto fronts"),
        Heading("Selected and best per objective"),
        Table(picks_table(compared, objectives)),
        Heading("Differences"),
        Bullets(differences(compared, objectives)),
    ]
    html, markdown = out / "compare.html", out / "compare.md"
    markdown.write_text(to_markdown(blocks, out))
    html.write_text(to_html(blocks, f"autotune compare: {labels}"))
    return CompareOutputs(html, markdown, figure)


def overlay_figure(compared: list[Compared], objectives: dict[str, str]) -> Figure:
    names = list(objectives)
    pairs = [(b, a) for a, b in combinations(names, 2)] or [(None, names[0])]
    fig, axes = plt.subplots(1, len(pairs), figsize=(7.5 * len(pairs) ** 0.8, 5), dpi=110)
    for ax, (x_name, y_name) in zip(getattr(axes, "flat", [axes]), pairs, strict=True):
        for index, run in enumerate(compared):
            color = RUN_COLORS[index % len(RUN_COLORS)]

            def xy(c: Candidate, x=x_name, y=y_name) -> tuple[float, float]:
                return (c.values[x] if x else c.number), c.values[y]

            for feasible, marker in ((True, "o"), (False, "x")):
                shown = [c for c in run.candidates if c.feasible == feasible]
                if shown:
                    ax.scatter(
                        *zip(*map(xy, shown), strict=True),
                        color=color,
                        marker=marker,
                        alpha=0.35,
                        s=22,
                    )
            if run.front:
                ax.plot(
                    *zip(*sorted(map(xy, run.front)), strict=True),
                    color=color,
                    marker="o",
                    linestyle="-" if len(names) == 2 else "none",
                    label=f"{run.label}: feasible front ({len(run.front)})",
                )
            chosen = run.results.selection.chosen
            match = [c for c in run.candidates if chosen and c.number == chosen.number]
            if match:
                ax.scatter(
                    *xy(match[0]),
                    s=280,
                    marker="*",
                    color=color,
                    edgecolor="black",
                    zorder=5,
                    label=f"{run.label}: selected (trial {match[0].number})",
                )
        ax.set_xlabel(f"{x_name} ({objectives[x_name]})" if x_name else "trial")
        ax.set_ylabel(f"{y_name} ({objectives[y_name]})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle("Pareto fronts (dots feasible, crosses infeasible, stars selected)")
    fig.tight_layout()
    return fig


def runs_table(compared: list[Compared], objectives: dict[str, str]) -> pd.DataFrame:
    everything = [c for run in compared for c in run.candidates]
    bounds = objective_bounds(everything, objectives) if everything else {}
    rows = []
    for run in compared:
        r = run.results
        machines = r.environments()
        chosen = r.selection.chosen
        rows.append(
            {
                "run": run.label,
                "space": r.space.name,
                "target": r.target,
                "machine": hardware(machines[0]) if machines else "",
                "completed": len(run.candidates),
                "feasible": sum(c.feasible for c in run.candidates),
                "front": len(run.front),
                "hypervolume": scaled_hypervolume(run.candidates, objectives, bounds)
                if bounds
                else None,
                "selected": f"trial {chosen.number}" if chosen else "none",
            }
        )
    return pd.DataFrame(rows)


def picks(run: Compared, objectives: dict[str, str]) -> list[tuple[str, Candidate]]:
    """(role, candidate): the run's selected trial, then its best feasible trial per objective
    (the best completed one, marked infeasible, when none is feasible)."""
    found = []
    chosen = run.results.selection.chosen
    by_number = {c.number: c for c in run.candidates}
    if chosen is not None and chosen.number in by_number:
        found.append(("selected", by_number[chosen.number]))
    pool = [c for c in run.candidates if c.feasible] or run.candidates
    suffix = "" if any(c.feasible for c in run.candidates) else " (infeasible)"
    for name, direction in objectives.items():
        if pool:
            best = (min if direction == "minimize" else max)(
                pool, key=lambda c, n=name: (c.values[n], -c.number)
            )
            found.append((f"best {name}{suffix}", best))
    return found


def picks_table(compared: list[Compared], objectives: dict[str, str]) -> pd.DataFrame:
    knobs = list(dict.fromkeys(k for run in compared for k in run.results.space.search))
    rows = []
    for run in compared:
        for role, candidate in picks(run, objectives):
            row = run.results.row(candidate.number)
            rows.append(
                {
                    "run": run.label,
                    "role": role,
                    "trial": candidate.number,
                    **{k: _value(row, k) for k in knobs},
                    **candidate.values,
                    "feasible": candidate.feasible,
                }
            )
    return pd.DataFrame(rows)


def differences(compared: list[Compared], objectives: dict[str, str]) -> list[str]:
    """What differs between the runs, and which run wins where, in sentences."""
    items = []
    first = compared[0]
    for other in compared[1:]:
        items += setting_differences(first, other)
    for name, direction in objectives.items():
        best = []
        for run in compared:
            pool = [c for c in run.candidates if c.feasible]
            if pool:
                pick = (min if direction == "minimize" else max)(pool, key=lambda c: c.values[name])
                best.append((pick.values[name], run.label, pick.number, (run, pick)))
        if best:
            best.sort(key=lambda b: b[0], reverse=direction == "maximize")
            ranked = ", ".join(f"{label} {fmt(v)} (trial {n})" for v, label, n, _ in best)
            winners = [label for v, label, _, _ in best if v == best[0][0]]
            verdict = "a tie"
            apart = next(
                (why for other in compared[1:] if (why := not_comparable(first, other, name))), ""
            )
            if apart:
                verdict = f"not comparable ({apart})"
            elif len(winners) == 1 and len(best) > 1:
                gap = abs(best[0][0] - best[1][0])
                share = f" ({gap / abs(best[1][0]):.1%})" if best[1][0] else ""
                told = told_apart(best[0][3], best[1][3], name, direction)
                verdict = f"**{winners[0]}** wins by {fmt(gap)}{share}" + (
                    ", distinguishable" if told else ", inside the noise: a tie in effect"
                )
            elif len(best) == 1:
                verdict = f"only {best[0][1]} has a feasible trial"
            items.append(f"best feasible {name}: {verdict}; {ranked}")
    for a, b in combinations(compared, 2):
        items.append(front_dominance(a, b, objectives))
    for run in compared:
        chosen = run.results.selection.chosen
        if chosen is None:
            items.append(f"{run.label} selected nothing: {run.results.selection.reason}")
            continue
        match = next(c for c in run.candidates if c.number == chosen.number)
        row = run.results.row(chosen.number)
        params = ", ".join(
            f"{k} {fmt(_value(row, k))}"
            for k in ("precision", "lora_r", "learning_rate")
            if _value(row, k) is not None
        )
        figures = ", ".join(f"{k} {fmt(v)}" for k, v in match.values.items())
        items.append(f"{run.label} selects trial {chosen.number} ({params}): {figures}")
    return items


def not_comparable(a: Compared, b: Compared, name: str) -> str:
    """Why two runs' figures on the quality figure `name` cannot be ranked ('' when they can):
    they score different eval data, or judge by different headline figures (a custom module's
    figure is the module's own)."""
    if not is_quality(name):
        return ""
    space_a, space_b = a.results.space, b.results.space
    if space_a.data != space_b.data:
        return "the runs score different data"
    if headline(space_a) != headline(space_b):
        return "the runs score by different metrics"
    return ""


def told_apart(
    first: tuple[Compared, Candidate], second: tuple[Compared, Candidate], name: str, direction: str
) -> bool:
    """Whether the first run's candidate is distinguishably better on `name` (dominance.py);
    per-example correctness is paired only when both runs scored the same data."""
    (run_a, a), (run_b, b) = first, second
    if run_a.results.space.data != run_b.results.space.data:
        a = replace(a, evidence=replace(a.evidence, correct="", scores={}))
        b = replace(b, evidence=replace(b.evidence, correct="", scores={}))
    return better_by(a, b, name, direction)


def setting_differences(a: Compared, b: Compared) -> list[str]:
    """Differences of space, target and machine between two runs."""
    items = []
    if a.results.target != b.results.target:
        items.append(f"target: {a.label} {a.results.target}, {b.label} {b.results.target}")
    left = _flatten(a.results.space.model_dump(mode="json"))
    right = _flatten(b.results.space.model_dump(mode="json"))
    for key in sorted(set(left) | set(right)):
        here, there = _text(left.get(key)), _text(right.get(key))
        if here != there:
            items.append(f"space `{key}`: {a.label} {here}, {b.label} {there}")
    ma, mb = a.results.environments(), b.results.environments()
    if ma and mb:
        for key in ("cpu", "usable_cores", "gpus", "os"):
            if ma[0].get(key) != mb[0].get(key):
                items.append(
                    f"machine {key}: {a.label} {_text(ma[0].get(key))}, "
                    f"{b.label} {_text(mb[0].get(key))}"
                )
        va, vb = ma[0].get("versions", {}), mb[0].get("versions", {})
        for package in sorted(set(va) | set(vb)):
            if va.get(package) != vb.get(package):
                items.append(
                    f"{package}: {a.label} {va.get(package, '-')}, {b.label} {vb.get(package, '-')}"
                )
    if not items:
        items.append(f"{a.label} and {b.label}: same space, target and machine")
    return items


def front_dominance(a: Compared, b: Compared, objectives: dict[str, str]) -> str:
    directions = list(objectives.values())

    def beaten(run: Compared, by: Compared) -> int:
        return sum(
            any(
                dominates(
                    [q.values[n] for n in objectives], [p.values[n] for n in objectives], directions
                )
                for q in by.front
            )
            for p in run.front
        )

    return (
        f"fronts: {beaten(a, b)} of {a.label}'s {len(a.front)} front trials are dominated by "
        f"{b.label}'s front; {beaten(b, a)} of {b.label}'s {len(b.front)} by {a.label}'s"
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if (
        isinstance(value, dict)
        and value
        and not set(value) <= {"choices", "low", "high", "log", "step"}
    ):
        found: dict[str, Any] = {}
        for key, inner in value.items():
            found.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _value(row: pd.Series, key: str) -> Any:
    value = row.get(key)
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value
