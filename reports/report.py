"""What a run's report says, as blocks (reports/document.py): the question, the answer and why,
the trade-off, what mattered, and every trial. report.md and report.html render the same blocks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from autotune.decisions.candidate import Candidate
from autotune.decisions.record import TrialRecord
from autotune.reports.certainty import certainty_blocks
from autotune.reports.confusion import confusion_blocks
from autotune.reports.document import Block, Bullets, Heading, Image, Table, Text, cell
from autotune.reports.examples import example_blocks
from autotune.reports.figures import importances
from autotune.reports.quality import (
    collapse_lines,
    collapsed_trials,
    difference_text,
    headline,
    quality_names,
)
from autotune.reports.results import RunResults
from autotune.reports.training import training_blocks
from autotune.spaces import Choices, Range, Space, fmt, metric_column, model_source


def report_blocks(
    results: RunResults, figures: dict[str, Path], wall_seconds: float | None = None
) -> list[Block]:
    """The whole report; `wall_seconds` is the wall time of the command that just ran, if any."""
    space = results.space
    blocks: list[Block] = [
        Heading(f"autotune report: {space.name} on {results.target}", 1),
        Text(f"Run `{results.label}`, written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."),
        Heading("The question"),
        Bullets(question(results, wall_seconds)),
        Heading("The answer"),
        *answer(results),
        *certainty_blocks(results),
        *example_blocks(results),
        *confusion_blocks(results),
        Heading("The trade-off"),
        Text(
            "Every completed trial: the feasible ones as dots, the infeasible ones as crosses, "
            "the feasible Pareto front joined up, the constraints as lines, the selected trial "
            "as a star."
        ),
        Image(figures["pareto"], "Pareto front"),
        Table(trial_columns(results, results.front_frame()), "Feasible Pareto front"),
        Heading("Search progress"),
        Text(
            "The hypervolume of the feasible trials completed so far, as a fraction of the box "
            "between the best and the worst values the run reached (1 would be one trial best "
            "at everything)."
        ),
        Image(figures["hypervolume"], "Hypervolume over trials"),
        Heading("What mattered"),
        *importance_blocks(results, figures),
        Image(figures["parameters"], "Objectives against the searched knobs"),
        *training_blocks(results, figures),
        Heading("All trials"),
        Table(trial_columns(results, results.frame, everything=True)),
    ]
    failed = results.frame[results.frame["state"].isin(["FAIL", "PRUNED"])]
    if len(failed):
        blocks += [
            Heading("Failed and pruned trials"),
            Table(failed[["number", "state", *param_columns(results, failed), "error"]]),
        ]
    return blocks


def question(results: RunResults, wall_seconds: float | None) -> list[str]:
    space, frame = results.space, results.frame
    measured = (
        next((results.measured(int(n)) for n in results.completed["number"]), {})
        if len(frame)
        else {}
    )
    sizes = ""
    if measured:
        sizes = f" ({measured['train_examples']} train / {measured['eval_examples']} eval examples)"
    items = [
        f"space `{space.name}`: base model {base_model(space)}; data "
        f"{', '.join(space.data.files)}{sizes}",
        "searched: " + "; ".join(f"{k} {knob_text(v)}" for k, v in space.search.items()),
        "objectives: "
        + ", ".join(f"{k} ({v})" for k, v in space.objectives.items())
        + f"; latency statistic {space.latency.stat}",
        f"constraints: {', '.join(map(str, space.parsed_constraints())) or 'none'}",
        f"selection: among the top tier's candidates tied with its best "
        f"{space.preferred_objective()}, the smallest on disk, then the fastest",
        f"target: {results.target}",
    ]
    for machine in results.environments() or [{}]:
        if machine:
            items.append(f"hardware: {hardware(machine)}")
            items.append(
                "versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
            )
    states = frame["state"].value_counts() if len(frame) else pd.Series(dtype=int)
    budget = f"budget: {space.budget.trials} completed trials"
    if space.budget.timeout:
        budget += f" or {space.budget.timeout:.0f} s"
    used = ", ".join(f"{n} {s.lower()}" for s, n in states.items()) or "no trials"
    items.append(f"{budget}; used: {used}")
    wall = results.wall_seconds()
    times = []
    if wall is not None:
        times.append(f"{wall:.0f} s from the first trial's start to the last trial's end")
    if wall_seconds is not None:
        times.append(f"{wall_seconds:.0f} s for the last command, set-up included")
    if times:
        items.append("wall time: " + "; ".join(times))
    stages = [c for c in frame.columns if c.startswith("seconds.")]
    if stages:
        items.append(
            "time per stage, all trials: "
            + ", ".join(f"{c.removeprefix('seconds.')} {frame[c].sum():.1f} s" for c in stages)
        )
    return items


def answer(results: RunResults) -> list[Block]:
    selection = results.selection
    if selection.chosen is None:
        return [Text(f"No candidate selected: {selection.reason}."), *collapse_blocks(results)]
    chosen = selection.chosen
    where = " Its model is in `selected/`." if results.folder is not None else ""
    blocks: list[Block] = [
        Text(f"Selected **trial {chosen.number}**: {selection.reason}.{where}"),
        Table(trial_columns(results, results.frame[results.frame["number"] == chosen.number])),
        Text("Why: " + why(results, chosen)),
    ]
    return blocks + collapse_blocks(results) + against_base(results, chosen)


def collapse_blocks(results: RunResults) -> list[Block]:
    """The trials whose predictions collapsed (evaluators/collapse.py), never selected."""
    lines = collapse_lines(results.records, results.selection)
    if not lines:
        return []
    return [
        Text(
            "Collapsed trials (their predictions mostly one string, empty, or echoes of the "
            "prompt), left out of the selection whatever their figures:"
        ),
        Bullets(lines),
    ]


def measured_on(base: TrialRecord, chosen: Candidate) -> str:
    """How the base was measured: on every eval example like a candidate, or on a prefix of the
    split (search/reference.py), whose interval is wider for it."""
    scored, examples = base.measured.get("eval_examples"), len(chosen.evidence.correct)
    if scored and examples and scored < examples:
        return f"measured on the first {scored} of the {examples} eval examples"
    return "measured the same way"


def against_base(results: RunResults, chosen: Candidate) -> list[Block]:
    """The untrained base beside the pick: what fine-tuning bought."""
    base = results.reference
    if base is None:
        return []
    space = results.space
    mine = results.records[chosen.number].metrics
    quality = [n for n in quality_names(space, mine) if n in base.metrics]
    names = list(dict.fromkeys([*space.objectives, *quality]))
    rows = []
    for label, metrics in (("untrained base", base.metrics), (f"trial {chosen.number}", mine)):
        rows.append({"model": label, **{n: figure(space, metrics, n) for n in names}})
    name = headline(space)
    gain = ""
    if name in mine and name in base.metrics:
        gain = ": " + difference_text(name, mine[name], base.metrics[name])
    return [
        Text(
            f"Against the untrained base (exported at {base.params.get('precision')}, "
            f"{measured_on(base, chosen)}, never a candidate){gain}."
        ),
        Table(pd.DataFrame(rows), "The selected trial and the untrained base"),
    ]


def figure(space: Space, metrics: dict[str, float], name: str) -> float | None:
    """A figure by the name the space uses; None when it was not measured."""
    return metrics.get(space.column(name))


def why(results: RunResults, chosen: Candidate) -> str:
    """The pick against its alternatives on the front, in words."""
    space = results.space
    met = ", ".join(
        f"{name} (margin {-violation:.3g})" for name, violation in chosen.violations.items()
    )
    parts = [f"it meets every constraint: {met}." if met else "the space sets no constraint."]
    prefer = space.preferred_objective()
    for name, direction in space.objectives.items():
        if name == prefer:
            continue
        best = (min if direction == "minimize" else max)(
            results.selection.front, key=lambda c, n=name: c.values[n]
        )
        if best.number == chosen.number:
            parts.append(f"It is also the best on the front for {name}.")
            continue
        parts.append(
            f"The best {name} on the front is trial {best.number} "
            f"({name} {best.values[name]:.4g} against {chosen.values[name]:.4g}), at "
            f"{prefer} {best.values[prefer]:.4g} against {chosen.values[prefer]:.4g}."
        )
    parts.append(
        "A constraint that shifts the choice can be tried with "
        f"`autotune select {results.label} --where '...'`."
    )
    return " ".join(parts)


# Below this many trainings, importances rank knobs on a handful of points: noise, not evidence.
MIN_TRAININGS_FOR_IMPORTANCES = 10


def trainings(results: RunResults) -> int:
    """Completed trials that trained their own adapter (not precision siblings)."""
    return sum(1 for r in results.records if r.complete and r.sibling_of is None)


def importance_blocks(results: RunResults, figures: dict[str, Path]) -> list[Block]:
    count = trainings(results)
    if count < MIN_TRAININGS_FOR_IMPORTANCES:
        return [
            Text(
                f"Parameter importances are not yet informative: {count} distinct training(s) "
                f"completed, fewer than {MIN_TRAININGS_FOR_IMPORTANCES}. On so few points they "
                "would credit a knob with what the noise did."
            )
        ]
    return [
        Image(figures["importances"], "Parameter importances per objective"),
        Table(importance_table(results), "Parameter importances (Optuna, PED-ANOVA)"),
    ]


def importance_table(results: RunResults) -> pd.DataFrame:
    found = importances(results)
    params = sorted({p for values in found.values() for p in values})
    return pd.DataFrame([{"parameter": p, **{o: found[o].get(p) for o in found}} for p in params])


def param_columns(results: RunResults, frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c in results.space.search]


def metric_columns(results: RunResults) -> list[str]:
    """The objectives' and constraints' columns, in the order the space names them."""
    stat = results.space.latency.stat
    names = [*results.space.objectives, *(c.metric for c in results.space.parsed_constraints())]
    columns = list(dict.fromkeys(metric_column(n, stat) for n in names))
    return [c for c in columns if c in results.frame.columns]


def trial_columns(
    results: RunResults, frame: pd.DataFrame, everything: bool = False
) -> pd.DataFrame:
    """The columns a reader compares trials by (all stage times and states with `everything`)."""
    columns = ["number", *param_columns(results, frame), *metric_columns(results)]
    if "feasible" in frame:
        columns.append("feasible")
    collapsed = collapsed_trials(results.records, results.selection)
    if everything:
        columns[1:1] = ["state"]
        columns += [c for c in frame.columns if c.startswith("seconds.")]
        columns += [c for c in ("sibling_of", "retry_of") if frame[c].notna().any()]
    shown = frame[[c for c in columns if c in frame.columns]].copy()
    for column in metric_columns(results):  # "0.855 [0.807, 0.893]": the figure and its 95% CI
        ends = [f"{column}.lo", f"{column}.hi"]
        if column in shown and all(e in frame.columns for e in ends):
            rows = frame[[column, *ends]].values
            shown[column] = [with_interval(v, low, high) for v, low, high in rows]
    marks = ["yes" if int(n) in collapsed else "" for n in frame["number"]]
    if any(marks):  # a mark, where a reader scans the figures
        if "collapsed" in shown:
            shown["collapsed"] = marks
        else:
            shown.insert(1, "collapsed", marks)
    return shown


def with_interval(value: Any, low: Any, high: Any) -> str:
    if pd.isna(value):
        return ""
    if pd.isna(low) or pd.isna(high):
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def base_model(space: Space) -> str:
    if model_source(space) == "tiny" and space.model.tiny is not None:
        tiny = space.model.tiny
        return (
            f"tiny Phi-3 built locally ({tiny.num_layers} layer(s), hidden size "
            f"{tiny.hidden_size}, vocabulary {tiny.vocab_size})"
        )
    if model_source(space) == "gguf":
        gguf = space.model.gguf
        where = f"{gguf.file} from the package {gguf.package}" if hasattr(gguf, "file") else gguf
        return f"{where} (GGUF, dequantised to float32)"
    revision = f" @ {space.model.revision}" if space.model.revision else ""
    return f"{space.model.path}{revision}"


def knob_text(knob: Any) -> str:
    if isinstance(knob, Choices):
        return "{" + ", ".join(map(cell, knob.choices)) + "}"
    if isinstance(knob, Range):
        scale = ", log" if knob.log else (f", step {knob.step:g}" if knob.step else "")
        return f"{knob.low:g} to {knob.high:g}{scale}"
    return f"= {cell(knob)}"


def hardware(machine: dict[str, Any]) -> str:
    parts = [f"{machine.get('cpu')}, {machine.get('usable_cores')} usable cores"]
    if machine.get("memory_gb"):
        parts.append(f"{machine['memory_gb']} GB memory")
    parts += [f"GPU {g['name']} ({g['memory_gb']} GB)" for g in machine.get("gpus") or []]
    parts.append(str(machine.get("os", "")))
    return ", ".join(p for p in parts if p)
