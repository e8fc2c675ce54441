"""How each training went: its loss curve, how far it got through the rungs or checkpoints, and
its throughput (non-pad tokens a second, and the share of this machine's measured matrix-product
rate its FLOPs achieved: candidates/throughput.py), as decode is held against memory bandwidth.

A training is an adapter: precision siblings and repeats of a configuration reuse it (they share
`TrialRecord.adapter_key`), so each training is drawn and listed once, under the trial that
recorded the longest curve, with every trial that used it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autotune.decisions.record import TrialRecord  # noqa: E402
from autotune.reports.document import Block, Heading, Image, Table, Text  # noqa: E402
from autotune.reports.plot import COLORS  # noqa: E402
from autotune.reports.results import RunResults  # noqa: E402

# Past this many trainings the figure drops its legend: the table names them.
# The throughput metrics a trial records for its training, and their columns in the table.
THROUGHPUT = {"train_tokens_per_s": "tokens/s", "train_flops_share": "FLOP share"}
LEGEND_LIMIT = 12
# Matplotlib's tab10 without its red, which marks the selected trial's training.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


@dataclass(frozen=True)
class Training:
    """One adapter's training, as recorded by `record`, used by the trials `numbers`."""

    record: TrialRecord
    numbers: tuple[int, ...]

    @property
    def train(self) -> list[list[float]]:
        return list(self.record.loss_curve.get("train") or [])

    @property
    def eval(self) -> list[list[float]]:
        return list(self.record.loss_curve.get("eval") or [])

    @property
    def stopped(self) -> str:
        """Why it stopped early; empty for one that ran to its end."""
        rung = self.record.rung
        return (rung.stopped if rung else "") or (
            self.record.reason if not self.record.complete else ""
        )


def trainings(results: RunResults) -> list[Training]:
    """Each training with a recorded loss curve or rung, in the order of its first trial."""
    groups: dict[str, list[TrialRecord]] = {}
    for record in results.records:
        family = record.sibling_of if record.sibling_of is not None else record.number
        groups.setdefault(record.adapter_key or f"trial {family}", []).append(record)
    found = []
    for records in groups.values():
        shown = [r for r in records if r.loss_curve or r.rung is not None]
        if shown:
            best = max(shown, key=lambda r: (len(r.loss_curve.get("train") or []), -r.number))
            found.append(Training(best, tuple(sorted(r.number for r in records))))
    return sorted(found, key=lambda t: t.numbers[0])


def throughput(results: RunResults, training: Training) -> dict[str, float]:
    """The training's throughput metrics, from the first of its trials that recorded them (a
    trial paused at a rung records none)."""
    for record in results.records:
        if record.number in training.numbers and "train_tokens_per_s" in record.metrics:
            return {name: record.metrics[name] for name in THROUGHPUT if name in record.metrics}
    return {}


def throughput_text(results: RunResults) -> str:
    """One line on how fast training ran, or nothing when no trial recorded it."""
    found = [(t, throughput(results, t)) for t in trainings(results)]
    found = [(t, figures) for t, figures in found if figures]
    if not found:
        return ""
    chosen = results.selection.chosen.number if results.selection.chosen else None
    picked = [figures for t, figures in found if chosen in t.numbers]
    figures, whose = (
        (picked[0], "The selected trial's training")
        if picked
        else (found[0][1], f"Trial {found[0][0].record.number}'s training")
    )
    text = f"{whose} processed {figures['train_tokens_per_s']:,.0f} tokens a second (non-pad, "
    text += "optimiser steps only)"
    if "train_flops_share" in figures:
        text += (
            f", {figures['train_flops_share']:.0%} of the matrix-product rate this machine "
            "measured at the model's shapes in the training's dtype (FLOPs counted as 4 per "
            "token per frozen linear weight and 6 per LoRA weight; the rest of a step is "
            "attention, normalisation, the optimiser and Python)"
        )
    return text + "."


def loss_curve_figure(results: RunResults) -> Figure:
    """The training loss per step as a line and the eval loss at checkpoints as dots, one colour
    per training; the selected trial's training thick, trainings stopped early faint."""
    found = [t for t in trainings(results) if t.train or t.eval]
    chosen = results.selection.chosen.number if results.selection.chosen else None
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    for index, training in enumerate(found):
        number, picked = training.record.number, chosen in training.numbers
        colour = COLORS["selected"] if picked else PALETTE[index % len(PALETTE)]
        alpha = 1.0 if picked or not training.stopped else 0.5
        label = f"trial {number}"
        if picked:
            label += " (selected)" if chosen == number else f" (selected trial {chosen}'s)"
        if training.train:
            steps, losses = zip(*training.train, strict=True)
            ax.plot(steps, losses, color=colour, lw=2.2 if picked else 1.0, alpha=alpha)
        if training.eval:
            steps, losses = zip(*training.eval, strict=True)
            ax.plot(steps, losses, color=colour, marker="o", ms=4, ls=":", alpha=alpha)
        ax.plot([], [], color=colour, marker="o", ms=4, label=label)  # one legend entry each
    if not found:
        ax.text(0.5, 0.5, "no loss curve recorded", ha="center", va="center", color="#666666")
    elif len(found) <= LEGEND_LIMIT:
        ax.legend(fontsize=7, loc="best", ncol=2 if len(found) > 6 else 1)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss per training ({len(found)}): train per step (line), eval (dots)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def rung_table(results: RunResults) -> pd.DataFrame:
    """One row per training: its trials, the rung it reached of how many, its steps, the eval
    loss at each rung (or checkpoint) and why it stopped."""
    found = trainings(results)
    by_rung = any(t.record.rung is not None for t in found)
    hedged = any(
        t.record.rung is not None and t.record.rung.bracket for t in found
    )  # Hyperband's brackets
    shown_throughput = any(throughput(results, t) for t in found)
    rows = []
    for training in found:
        rung = training.record.rung
        losses = list(rung.losses) if rung else [loss for _, loss in training.eval]
        steps = rung.steps if rung else (training.train[-1][0] if training.train else None)
        row = {
            "training": training.record.number,
            "trials": ", ".join(map(str, training.numbers)),
            "state": training.record.state,
        }
        if by_rung:
            row["rung"] = f"{rung.reached} of {rung.of}" if rung else ""
        if hedged:  # bracket b is first judged at rung b
            row["bracket"] = rung.bracket + 1 if rung else None
        row["steps"] = steps
        row["train loss"] = training.train[-1][1] if training.train else None
        if shown_throughput:
            figures = throughput(results, training)
            speed = figures.get("train_tokens_per_s")
            row["tokens/s"] = round(speed) if speed is not None else None
            row["FLOP share"] = figures.get("train_flops_share")
        name = "rung" if by_rung else "checkpoint"
        row.update({f"{name} {i}": loss for i, loss in enumerate(losses or [], start=1)})
        row["stopped"] = training.stopped
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):  # the loss columns in order, whichever training reached the most rungs
        losses = sorted((c for c in frame.columns if c.split(" ")[-1].isdigit()), key=_index)
        fixed = [c for c in frame.columns if c not in losses and c != "stopped"]
        frame = frame[[*fixed, *losses, "stopped"]]
    return frame


def _index(column: str) -> int:
    return int(column.split(" ")[-1])


def training_blocks(results: RunResults, figures: dict[str, Path]) -> list[Block]:
    """The report's training section; nothing when no trial recorded a loss curve or rung."""
    found = trainings(results)
    if not found:
        return []
    by_rung = any(t.record.rung is not None for t in found)
    where = "rung" if by_rung else "checkpoint"
    blocks: list[Block] = [
        Heading("Training"),
        Text(
            "One curve per training (precision siblings share their training's): the training "
            f"loss at each optimiser step, and the eval loss at each {where}."
        ),
    ]
    if "loss_curves" in figures:
        blocks.append(Image(figures["loss_curves"], "Loss curve per training"))
    if speed := throughput_text(results):
        blocks.append(Text(speed))
    table = rung_table(results)
    caption = (
        "Rungs per training: the rung reached of how many, "
        + ("its bracket (first judged at that rung), " if "bracket" in table.columns else "")
        + "the eval loss at each rung and why it stopped"
        if by_rung
        else "Eval loss per training at each checkpoint, and why it stopped"
    )
    blocks.append(Table(table, caption))
    return blocks
