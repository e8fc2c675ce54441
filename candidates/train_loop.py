"""The optimiser steps of one training: which examples each step takes, and the loop over them.

The batch plan is a function of the seed alone: epoch after epoch of length-grouped batches
(candidates/batching.py), `gradient_accumulation_steps` of them to an optimiser step. A training
continued from a checkpoint at step s builds the same plan and starts at step s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from autotune.candidates.batching import length_grouped_batches, pad_batch
from autotune.candidates.train_state import Progress
from autotune.candidates.training_model import autocast

# Called after every optimiser step: (step, total steps, training loss, examples per second).
StepHook = Callable[[int, int, float, float], None]
# Called at each median-rule checkpoint: (checkpoint index, eval loss); may raise to stop.
CheckpointHook = Callable[[int, float], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def step_plan(
    lengths: list[int], batch_size: int, accumulation: int, seed: int
) -> Iterator[list[list[int]]]:
    """The micro-batches of each optimiser step, endlessly: an epoch's last step may take fewer
    than `accumulation` micro-batches."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        batches = length_grouped_batches(lengths, batch_size, generator)
        for start in range(0, len(batches), accumulation):
            yield batches[start : start + accumulation]


def tensors(encoded, indices: list[int], pad_id: int, device: str):
    """(input ids, attention mask, labels) of the examples at `indices`, on `device`."""
    rows = [encoded[i] for i in indices]
    ids, mask = pad_batch([r[0] for r in rows], pad_id)
    labels, _ = pad_batch([r[1] for r in rows], -100)
    return ids.to(device), mask.to(device), labels.to(device)


def run_steps(
    training: Any,
    params: Any,
    device: str,
    progress: Progress,
    stop_at: int,
    checkpoint_at: list[int],
    on_checkpoint: CheckpointHook | None,
    on_step: StepHook | None,
) -> None:
    """Optimiser steps from `progress.step` to `stop_at`, the eval loss taken at the median
    rule's `checkpoint_at` steps; `progress` is updated as they run."""
    model, encoded = training.model, training.encoded
    lengths = [len(ids) for ids, _ in encoded]
    plan = step_plan(lengths, params.batch_size, params.gradient_accumulation_steps, params.seed)
    for _ in range(progress.step):  # the steps a checkpoint already holds
        next(plan)
    trainable = [p for p in model.parameters() if p.requires_grad]
    start, examples = time.perf_counter(), 0
    model.train()
    while progress.step < stop_at:
        micro = next(plan)
        total_loss, step_start = 0.0, time.perf_counter()
        for indices in micro:
            ids, mask, labels = tensors(encoded, indices, training.pad_id, device)
            progress.tokens += int(mask.sum())
            progress.padded_tokens += mask.numel()
            with autocast(device, params.dtype):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at step {progress.step}")
            training.scaler.scale(loss / len(micro)).backward()
            total_loss += loss.item() / len(micro)
            examples += len(indices)
        if params.max_grad_norm > 0:
            training.scaler.unscale_(training.optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, params.max_grad_norm)
        training.scaler.step(training.optimizer)
        training.scaler.update()
        training.schedule.step()
        training.optimizer.zero_grad()
        progress.step_times.append(time.perf_counter() - step_start)
        progress.train_losses.append(total_loss)
        progress.step += 1
        if on_step is not None:
            rate = examples / max(time.perf_counter() - start, 1e-9)
            on_step(progress.step, training.total_steps, total_loss, rate)
        if progress.step in checkpoint_at:
            loss_now = training.eval_loss(device)
            progress.checkpoint_losses.append(loss_now)
            progress.eval_losses.append((progress.step, loss_now))
            if on_checkpoint is not None:
                on_checkpoint(len(progress.checkpoint_losses) - 1, loss_now)
            model.train()
