"""The model card (README.md) of an exported candidate: what it was made from, how, what it
measured and how, on which machine, and why it was chosen."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pandas as pd

from autotune.reports.document import markdown_table
from autotune.reports.examples import card_examples
from autotune.reports.quality import headline
from autotune.reports.report import base_model, hardware
from autotune.reports.results import RunResults
from autotune.spaces import (
    LATENCY_METRICS,
    METRICS,
    STATS,
    Constraint,
    Space,
    fmt,
    metric_column,
    split_metric,
)
from autotune.spaces.metrics import INTERVAL_ENDS, QUALITY_METRICS, describe, interval_of


def model_card(
    results: RunResults,
    number: int,
    reason: str,
    constraints: list[Constraint],
    metrics: dict[str, float],
) -> str:
    """README.md for trial `number`'s model folder."""
    space, target = results.space, results.target
    row = results.row(number)
    measured = results.measured(number)
    params = {k: row[k] for k in row.index if k in space.search and pd.notna(row[k])}
    precision = params.get("precision", "")
    lines = [
        f"# {space.name}: trial {number}, {precision} for {target}",
        "",
        "An onnxruntime-genai model folder: a LoRA adapter trained on the base model, merged into "
        "it and exported with the onnxruntime-genai model builder, selected by autotune.",
        "",
        "## Base model",
        "",
        base_model(space),
        "",
        "## Data",
        "",
        f"- files: {', '.join(space.data.files)}",
        f"- prompt template: `{space.data.prompt_template!r}`",
        f"- completion template: `{space.data.completion_template!r}`",
    ]
    if space.data.labels:
        lines.append(f"- labels: {', '.join(space.data.labels)}")
    if measured:
        lines.append(
            f"- split: {measured['train_examples']} train / {measured['eval_examples']} eval "
            f"examples (eval fraction {space.data.eval_fraction:g}, split seed "
            f"{space.data.split_seed})"
        )
    train = space.train
    lines += [
        "",
        "## Parameters",
        "",
        f"- training: {train.method}, target modules {', '.join(train.target_modules)}, "
        f"{train.epochs:g} epochs, batch size {train.batch_size}, max length {train.max_seq_len}, "
        f"seed {train.seed}",
        *(f"- {k}: {fmt(v)}" for k, v in params.items()),
        "",
        "## Metrics",
        "",
        "Measured on this exported ONNX model with onnxruntime-genai on the target.",
        "",
        markdown_table(_metric_rows(metrics, measured, custom_names(space))),
        "",
        "In brackets, 95% intervals: "
        + ("Wilson for accuracy, " if "accuracy" in metrics else "")
        + "a bootstrap over the eval examples for the other quality figures, the order "
        "statistics of the repeats for a latency median or p90.",
        "",
    ]
    latency = measured.get("latency")
    if latency:
        stable = (
            f", until the median CIs were within {latency['stable']:g}"
            if latency.get("stable")
            else ""
        )
        lines.append(
            f"Latency method: greedy generation, {latency['prompt_tokens']}-token prompt and "
            f"{latency['new_tokens']} new tokens (forced), {latency['warmup']} warm-up repeats "
            f"dropped, {latency['repeats_done']} repeats timed{stable}, {latency['threads']} "
            "intra-op thread(s) on cpu; figures are percentiles over the repeats."
        )
        lines.append("")
    export = measured.get("export")
    if export:
        lines.append(export_text(export))
        lines.append("")
    if measured.get("accuracy_method"):
        lines.append(
            f"Quality method: {measured['accuracy_method']} on the {measured['eval_examples']} "
            f"eval examples ({measured['metric']} metric); headline figure {headline(space)}."
        )
    collapse = measured.get("collapse") or {}
    if collapse.get("flagged"):
        lines += ["", f"Warning: this model's predictions {collapse.get('reason') or 'collapsed'}."]
    shown = card_examples(results, number)
    if shown is not None:
        lines += [
            "",
            "## Examples",
            "",
            f"The first {len(shown)} eval examples, with this model's answers (all in "
            f"trials/{number}/generations.jsonl of the run folder):",
            "",
            markdown_table(shown),
        ]
    lines += ["", "## Hardware", "", f"- target: {target}"]
    machine = measured.get("environment")
    if machine:
        lines.append(f"- machine: {hardware(machine)}")
        lines.append(
            "- versions: " + ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items())
        )
    lines += ["", "## Why this candidate", "", reason + "."]
    if constraints:
        lines += ["", "Constraints:"]
        for c in constraints:
            value = metrics.get(metric_column(c.metric, space.latency.stat))
            state = "met" if value is not None and c.violation(value) <= 0 else "missed"
            lines.append(f"- {c} : {fmt(value)} ({state})")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import onnxruntime_genai as og",
        "",
        'model = og.Model("path/to/this/folder")',
        "tokenizer = og.Tokenizer(model)",
        "```",
        "",
    ]
    return "\n".join(lines)


def custom_names(space: Space) -> set[str]:
    """A custom `evaluate` module's figures the space names (not in the vocabulary)."""
    named = [*space.objectives, *(c.metric for c in space.parsed_constraints())]
    return {n for n in named if split_metric(n)[0] not in METRICS}


def _metric_rows(
    metrics: dict[str, float], measured: dict[str, Any], custom: Collection[str] = ()
) -> pd.DataFrame:
    rows = []
    for name, value in metrics.items():
        base, stat = split_metric(name)
        training = base.startswith("train_")  # what made the model, not a figure of it
        known = base in METRICS or base in custom
        if not known or training or (base in LATENCY_METRICS and stat not in STATS):
            continue
        if stat in INTERVAL_ENDS:  # shown with its figure
            continue
        method = describe(base) if base in METRICS else "the space's own metric module"
        if base in LATENCY_METRICS and stat:
            method += f" ({stat} over the repeats)"
        elif (base in QUALITY_METRICS or base in custom) and measured.get("eval_examples"):
            method += f" ({measured['eval_examples']} eval examples)"
        interval = interval_of(metrics, name)
        shown = fmt(value) + (f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else "")
        rows.append({"metric": name, "value": shown, "how": method})
    return pd.DataFrame(rows, columns=["metric", "value", "how"])


def export_text(export: dict) -> str:
    """What the export did, read back from the ONNX graph (candidates/export_summary.py)."""
    layers = ", ".join(f"{n} {p}" for p, n in sorted(export.get("layers", {}).items()))
    shared = " (one matrix shared by both)" if export.get("shared_embeddings") else ""
    text = (
        f"Weights as exported: decoder matmuls {layers or 'none'}; embedding table "
        f"{export.get('embed_tokens')}, LM head {export.get('lm_head')}{shared}."
    )
    if export.get("warnings"):
        text += f" The builder warned: {export['warnings'][0]}"
    return text
