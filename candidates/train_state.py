"""A training's resumable state: what a rung checkpoint holds besides the adapter's weights.

Continuing a training from a checkpoint must be the training that never stopped: the optimiser's
moments, the schedule's position, the gradient scaler, torch's random state (LoRA dropout) and
the losses so far are saved with the adapter and restored before the next step. The order of the
batches needs no saving: it is a function of the seed (candidates/train_loop.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

STATE_FILE = "training_state.pt"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class Progress:
    """Where a training stands: its step, its losses, the seconds it has run so far, and what its
    optimiser steps processed (for its throughput: candidates/throughput.py)."""

    step: int = 0
    train_losses: list[float] = field(default_factory=list)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    checkpoint_losses: list[float] = field(default_factory=list)  # the median rule's
    seconds: float = 0.0
    step_times: list[float] = field(default_factory=list)  # seconds of each optimiser step
    tokens: int = 0  # non-pad tokens through forward and backward
    padded_tokens: int = 0  # the same with padding: what the products actually ran on


def save_state(folder: Path, training: Any, progress: Progress) -> None:
    """The adapter (peft format) and everything the next step needs, into `folder`."""
    training.model.save_pretrained(folder)
    torch.save(
        {
            "optimizer": training.optimizer.state_dict(),
            "schedule": training.schedule.state_dict(),
            "scaler": training.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "progress": progress.__dict__,
        },
        folder / STATE_FILE,
    )


def load_state(folder: Path, training: Any) -> Progress:
    """Restore a checkpoint saved by `save_state` into a freshly set-up training."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    if not (folder / STATE_FILE).is_file():
        raise FileNotFoundError(f"{folder}: no {STATE_FILE}; not a training checkpoint")
    device = next(training.model.parameters()).device
    weights = load_file(folder / ADAPTER_WEIGHTS, device=str(device))
    set_peft_model_state_dict(training.model, weights)
    state = torch.load(folder / STATE_FILE, weights_only=False)
    training.optimizer.load_state_dict(state["optimizer"])
    training.schedule.load_state_dict(state["schedule"])
    training.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    progress = Progress(**state["progress"])
    progress.eval_losses = [tuple(pair) for pair in progress.eval_losses]
    return progress
