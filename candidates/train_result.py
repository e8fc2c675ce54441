"""A trained adapter's record (`TrainResult`, saved as autotune_train.json beside it): its losses,
time, memory and throughput, read back for reports and cached trials alike."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TRAIN_INFO = "autotune_train.json"


@dataclass(frozen=True)
class TrainResult:
    """A trained adapter (or a checkpoint of one) and how training went (`peak_mem_mb`: see the
    module doc). `steps` of `total_steps` ran; `seconds` over every part of the training."""

    path: Path
    train_loss: float
    eval_loss: float
    steps: int
    seconds: float
    checkpoint_losses: tuple[float, ...] = ()
    peak_mem_mb: float | None = None
    device: str = "cpu"
    total_steps: int = 0
    train_losses: tuple[float, ...] = ()  # per optimiser step
    eval_losses: tuple[tuple[int, float], ...] = ()  # (step, eval loss) at each evaluation
    resumed_from: int = 0  # the step of the checkpoint this part continued from
    step_times: tuple[float, ...] = ()  # seconds of each optimiser step (no evaluations)
    tokens: int = 0  # non-pad tokens the steps processed
    padded_tokens: int = 0  # the same with padding
    flops_per_token: float = 0.0  # candidates/throughput.py's estimate
    matmul_rate: float | None = None  # the machine's measured FLOP/s in the training's dtype

    @property
    def complete(self) -> bool:
        return self.steps >= self.total_steps

    @property
    def tokens_per_s(self) -> float | None:
        """Non-pad tokens per second of optimiser steps (evaluations not counted)."""
        seconds = sum(self.step_times)
        return self.tokens / seconds if self.tokens and seconds > 0 else None

    @property
    def flops_per_s(self) -> float | None:
        rate = self.tokens_per_s
        return rate * self.flops_per_token if rate and self.flops_per_token else None

    @property
    def flops_share(self) -> float | None:
        """The achieved FLOP rate over the machine's measured matrix-product rate."""
        achieved = self.flops_per_s
        return achieved / self.matmul_rate if achieved and self.matmul_rate else None


def throughput_metrics(result: TrainResult) -> dict[str, float]:
    """`train_tokens_per_s` and `train_flops_share`, those the result has figures for."""
    found = {"train_tokens_per_s": result.tokens_per_s, "train_flops_share": result.flops_share}
    return {name: value for name, value in found.items() if value is not None}


def load_train_result(path: Path) -> TrainResult:
    info = json.loads((path / TRAIN_INFO).read_text())
    return TrainResult(
        path,
        info["train_loss"],
        info["eval_loss"],
        info["steps"],
        info["seconds"],
        tuple(info.get("checkpoint_losses", ())),
        info.get("peak_mem_mb"),
        info.get("device", "cpu"),
        info.get("total_steps", info["steps"]),
        tuple(info.get("train_losses", ())),
        tuple(tuple(pair) for pair in info.get("eval_losses", ())),
        info.get("resumed_from", 0),
        tuple(info.get("step_times", ())),
        info.get("tokens", 0),
        info.get("padded_tokens", 0),
        info.get("flops_per_token", 0.0),
        info.get("matmul_rate"),
    )
