"""LoRA and QLoRA training with peft: the adapter of one candidate.

- `lora`: the base in the compute dtype (`TrainParams.dtype`); bf16/fp16 run under autocast, fp16
  with a gradient scaler. The LoRA weights and AdamW's moments stay in float32 (peft's default).
  `auto` is bf16 on a GPU and on a CPU with bf16 instructions, where it runs about twice fp32's
  matrix-product rate (candidates/training_model.py).
- `qlora`: the base quantised to 4 bits by bitsandbytes (NF4 or FP4, optionally with double
  quantisation) and computed in the compute dtype; peft's `prepare_model_for_kbit_training` keeps
  the unquantised parts (norms, embeddings, head) in float32.

By default the loss is computed on the completion and its EOS only (the prompt is masked out):
with the loss over the whole text a small model learns the phrases and collapses to one label
(the loss span and the learning-rate schedule are candidates/recipe.py). The seed is set before
the peft model is created, because that is when the LoRA weights are initialised. Training time
and peak memory are recorded with the adapter: on a GPU `torch.cuda.max_memory_allocated`, on a
CPU the process's peak resident memory.

Each optimiser step's seconds and the (non-pad) tokens it processed are recorded; with the
machine's measured matrix-product rate (`rates`, candidates/throughput.py) the result states its
tokens per second and the share of that rate its FLOPs achieved.

A training may run in parts (the rungs of search/fidelity.py): `stop_at` ends a part at a step
and saves a checkpoint (the adapter and the state of candidates/train_state.py); `resume`
continues from one. A training run in parts ends with the adapter a straight one would make.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from autotune.candidates.data import Example
from autotune.candidates.recipe import DEFAULT_LOSS_SPAN, encode, make_schedule
from autotune.candidates.throughput import cached_matmul_rate, flops_per_token, linear_params
from autotune.candidates.train_loop import (
    CheckpointHook,
    StepHook,
    TrainingDiverged,
    run_steps,
    tensors,
)
from autotune.candidates.train_result import (
    TRAIN_INFO,
    TrainResult,
    load_train_result,
    throughput_metrics,
)
from autotune.candidates.train_state import Progress, load_state, save_state
from autotune.candidates.training_model import (
    TORCH_DTYPES,
    autocast,
    load_for_training,
    peft_targets,
    resolve_dtype,
    training_device,
)
from autotune.evaluators.memory import PeakMemory
from autotune.spaces.knobs import KNOBS

__all__ = [
    "TORCH_DTYPES",
    "CheckpointHook",
    "StepHook",
    "TrainParams",
    "TrainResult",
    "TrainingDiverged",
    "checkpoint_steps",
    "load_for_training",
    "load_train_result",
    "resolve_dtype",
    "throughput_metrics",
    "total_steps",
    "train_adapter",
    "training_device",
]


def knob_default(name: str) -> Any:
    """A TrainParams field's default: knob `name`'s in the knob table, read when one is made."""
    return field(default_factory=lambda: KNOBS[name].default)


@dataclass(frozen=True)
class TrainParams:
    """Everything that determines an adapter, besides the base model and the data.

    A trial passes every field (search/params.py). A field left out takes the knob table's default
    (spaces/knobs.py), `loss_span` the train section's; `dtype`, `quant_type` and `double_quant`
    those of an fp32 LoRA (no 4-bit base).
    """

    lora_r: int
    lora_alpha: float
    lora_dropout: float
    learning_rate: float
    epochs: float
    batch_size: int
    max_seq_len: int
    target_modules: tuple[str, ...]
    seed: int
    method: str = knob_default("method")  # lora | qlora
    dtype: str = "fp32"  # compute dtype: fp32 | bf16 | fp16
    gradient_checkpointing: bool = knob_default("gradient_checkpointing")
    quant_type: str | None = None  # qlora: nf4 | fp4
    double_quant: bool | None = None  # qlora: quantise the quantisation constants too
    lr_schedule: str = knob_default("lr_schedule")  # candidates/recipe.py
    warmup_ratio: float = knob_default("warmup_ratio")  # the schedule's warm-up share of the steps
    loss_span: str = DEFAULT_LOSS_SPAN  # completion_eos | completion | whole_text
    gradient_accumulation_steps: int = knob_default("gradient_accumulation_steps")
    max_grad_norm: float = knob_default("max_grad_norm")  # 0: no clipping
    weight_decay: float = knob_default("weight_decay")  # AdamW's decoupled weight decay
    adam_beta1: float = knob_default("adam_beta1")
    adam_beta2: float = knob_default("adam_beta2")
    max_steps: int | None = knob_default("max_steps")  # None: `epochs` of the training split


def steps_per_epoch(params: TrainParams, examples: int) -> int:
    return math.ceil(math.ceil(examples / params.batch_size) / params.gradient_accumulation_steps)


def total_steps(params: TrainParams, examples: int) -> int:
    """The optimiser steps of a training on `examples` training examples."""
    if params.max_steps is not None:
        return params.max_steps
    return max(1, round(params.epochs * steps_per_epoch(params, examples)))


def checkpoint_steps(total_steps: int, checkpoints: int) -> list[int]:
    """The steps after which the eval loss is taken: `checkpoints` evenly spaced before the end."""
    steps = {round(total_steps * (i + 1) / (checkpoints + 1)) for i in range(checkpoints)}
    return sorted(s for s in steps if 0 < s < total_steps)


def len0(pair: tuple[list[int], list[int]]) -> int:
    return len(pair[0])


def completion_loss(
    model, encoded, batch_size: int, pad_id: int, device: str = "cpu", dtype: str = "fp32"
) -> float:
    """Mean loss over the completion tokens of `encoded` examples."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast(device, dtype):
        for start in range(0, len(encoded), batch_size):
            indices = list(range(start, min(start + batch_size, len(encoded))))
            ids, mask, labels = tensors(encoded, indices, pad_id, device)
            n = int((labels[:, 1:] != -100).sum())
            total += model(input_ids=ids, attention_mask=mask, labels=labels).loss.item() * n
            count += n
    return total / max(count, 1)


def train_adapter(
    base_dir: Path,
    train: list[Example],
    evaluation: list[Example],
    params: TrainParams,
    out: Path,
    *,
    trust_remote_code: bool = False,
    checkpoints: int = 0,
    on_checkpoint: CheckpointHook | None = None,
    on_step: StepHook | None = None,
    stop_at: int | None = None,
    resume: Path | None = None,
    rates: Path | None = None,
) -> TrainResult:
    """Train a LoRA (or QLoRA) adapter on `train` and save it (peft format) to `out`.

    `evaluation` holds the examples the eval loss is taken on: at the end (of the part) and,
    with `checkpoints`, at that many evenly spaced steps of the whole training (recorded, and
    passed to `on_checkpoint`, which may stop training by raising). A small stratified subset
    ranks trainings as well as the whole split at a fraction of the cost (search/stages.py
    passes `strategy.checkpoint_examples` of them). With `stop_at` before the last step, `out`
    holds a checkpoint that `resume` continues from. `rates`: the JSON file of the machine's
    measured matrix-product rates (candidates/throughput.py), measured there on first use; None
    measures nothing and leaves the result's `flops_share` unknown.
    """
    device = training_device()
    with PeakMemory(device) as memory:
        result = _train(
            base_dir,
            train,
            evaluation,
            params,
            out,
            device,
            trust_remote_code,
            checkpoints,
            (on_checkpoint, on_step),
            (stop_at, resume),
            rates,
        )
    previous = load_train_result(resume).peak_mem_mb if resume is not None else None
    peaks = [m for m in (memory.peak_mb, previous) if m is not None]
    result = replace(result, peak_mem_mb=max(peaks) if peaks else None)
    info = {**asdict(result), "path": str(out), "params": asdict(params)}
    (out / TRAIN_INFO).write_text(json.dumps(info, indent=2))
    return result


@dataclass
class _Training:
    """One training, set up: the peft model, the encoded examples, the optimiser and schedule."""

    model: Any
    pad_id: int
    encoded: list[tuple[list[int], list[int]]]
    encoded_eval: list[tuple[list[int], list[int]]]
    steps_per_epoch: int
    total_steps: int
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    params: TrainParams
    flops_per_token: float
    shapes: Any  # the frozen linear layers' (in, out) shapes, counted

    def eval_loss(self, device: str) -> float:
        return completion_loss(
            self.model,
            self.encoded_eval,
            self.params.batch_size,
            self.pad_id,
            device,
            self.params.dtype,
        )


def _train(
    base_dir: Path,
    train: list[Example],
    evaluation: list[Example],
    params: TrainParams,
    out: Path,
    device: str,
    trust_remote_code: bool,
    checkpoints: int,
    hooks: tuple[CheckpointHook | None, StepHook | None],
    part: tuple[int | None, Path | None],
    rates: Path | None,
) -> TrainResult:
    start = time.perf_counter()
    (on_checkpoint, on_step), (stop_at, resume) = hooks, part
    training = _set_up(base_dir, train, evaluation, params, device, trust_remote_code)
    progress = load_state(resume, training) if resume is not None else Progress()
    resumed_from, before = progress.step, progress.seconds
    end = min(stop_at or training.total_steps, training.total_steps)
    at_steps = checkpoint_steps(training.total_steps, checkpoints)
    run_steps(training, params, device, progress, end, at_steps, on_checkpoint, on_step)
    eval_loss = training.eval_loss(device)
    if not progress.eval_losses or progress.eval_losses[-1][0] != end:
        progress.eval_losses.append((end, eval_loss))
    progress.seconds = before + time.perf_counter() - start
    if end < training.total_steps:
        save_state(out, training, progress)
    else:
        training.model.save_pretrained(out)
    tail = progress.train_losses[-training.steps_per_epoch :]
    rate = None
    if rates is not None:
        rate = cached_matmul_rate(rates, device, params.dtype, training.shapes)
    return TrainResult(
        out,
        sum(tail) / len(tail),
        eval_loss,
        progress.step,
        progress.seconds,
        tuple(progress.checkpoint_losses),
        None,
        device,
        training.total_steps,
        tuple(progress.train_losses),
        tuple(progress.eval_losses),
        resumed_from,
        tuple(progress.step_times),
        progress.tokens,
        progress.padded_tokens,
        training.flops_per_token,
        rate,
    )


def _set_up(
    base_dir: Path,
    train: list[Example],
    evaluation: list[Example],
    params: TrainParams,
    device: str,
    trust_remote_code: bool,
) -> _Training:
    """The base with its LoRA branches, the tokenised examples, AdamW and the schedule."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    model = load_for_training(base_dir, params, device, trust_remote_code=trust_remote_code)

    torch.manual_seed(params.seed)  # before get_peft_model: the LoRA weights are made there
    lora = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=peft_targets(params.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)

    def tokens(example: Example) -> tuple[list[int], list[int]]:
        return encode(
            tokenizer, example.prompt, example.completion, params.max_seq_len, params.loss_span
        )

    encoded = [tokens(e) for e in train]
    # Sorted by length: the eval batches hold sequences of one length, with little padding.
    encoded_eval = sorted((tokens(e) for e in evaluation), key=len0)
    steps = total_steps(params, len(encoded))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=params.learning_rate,
        betas=(params.adam_beta1, params.adam_beta2),
        weight_decay=params.weight_decay,
    )
    schedule = make_schedule(
        optimizer, params.lr_schedule, params.learning_rate, steps, params.warmup_ratio
    )
    # fp16 gradients underflow without loss scaling; bf16 and fp32 need none.
    scaler = torch.amp.GradScaler(device, enabled=params.dtype == "fp16")
    frozen, trainable, shapes = linear_params(model)
    return _Training(
        model,
        pad_id,
        encoded,
        encoded_eval,
        steps_per_epoch(params, len(encoded)),
        steps,
        optimizer,
        schedule,
        scaler,
        params,
        flops_per_token(frozen, trainable, params.gradient_checkpointing),
        shapes,
    )
