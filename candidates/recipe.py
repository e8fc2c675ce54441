"""The training recipe's two choices besides the optimiser: what the loss is taken on, and how
the learning rate moves.

Loss span (which tokens the loss counts; the model always reads the whole sequence):
- `completion_eos`: the completion and the EOS after it (autotune's default): the model learns
  the answer and where it ends, which label scoring (label + EOS) rewards;
- `completion`: the completion only, no EOS in the sequence;
- `whole_text`: every token, prompt included (what Olive's fine-tuning example trains on). On a
  small base this can collapse to one label (../shared/NOTES.md).

Schedules (`warmup_ratio` of the steps rising linearly from zero, where the schedule has one):
- `one_cycle`: torch's OneCycleLR, 10% warm-up from lr/25, linear decay to almost zero;
- `linear`: warm-up, then linear decay to zero; `cosine`: warm-up, then half a cosine to zero;
- `constant`: warm-up, then the peak rate to the end (Olive's example: constant after 3%); the
  default (spaces/knobs.py), with the default warm-up: on SmolLM2 it was the one recipe of six
  distinguishably better in 64 steps (bench/recipes.py), where the decaying schedules spend half
  the learning-rate area.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from autotune.spaces.knobs import LOSS_SPANS, SCHEDULES
from autotune.spaces.schema import TrainSection

LossSpan = Literal[LOSS_SPANS]
Schedule = Literal[SCHEDULES]
DEFAULT_LOSS_SPAN: str = TrainSection.model_fields["loss_span"].default


def encode(
    tokenizer, prompt: str, completion: str, max_len: int, span: str = DEFAULT_LOSS_SPAN
) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion (+ EOS), and the labels: -100 where the loss does not
    count. The prompt's start is cut when the whole does not fit in `max_len`."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if span != "completion":
        answer = answer + [tokenizer.eos_token_id]
    prompt_ids = prompt_ids[-max(1, max_len - len(answer)) :]
    masked = prompt_ids if span == "whole_text" else [-100] * len(prompt_ids)
    return prompt_ids + answer, masked + answer


def make_schedule(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    peak: float,
    total_steps: int,
    warmup_ratio: float,
) -> torch.optim.lr_scheduler.LRScheduler:
    """The learning-rate schedule over `total_steps` optimiser steps."""
    if schedule == "one_cycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peak, total_steps=total_steps, pct_start=0.1, anneal_strategy="linear"
        )
    warmup = round(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {SCHEDULES}")

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
