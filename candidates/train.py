"""LoRA and QLoRA training with peft: the adapter of one candidate.

- `lora`: the base in the compute dtype (`TrainParams.dtype`); bf16/fp16 run under autocast, fp16
  with a gradient scaler. The LoRA weights stay in float32 (peft's default).
- `qlora`: the base quantised to 4 bits by bitsandbytes (NF4 or FP4, optionally with double
  quantisation) and computed in the compute dtype; peft's `prepare_model_for_kbit_training` keeps
  the unquantised parts (norms, embeddings, head) in float32.

By default the loss is computed on the completion and its EOS only (the prompt is masked out):
with the loss over the whole text a small model learns the phrases and collapses to one label
(the loss span and the learning-rate schedule are candidates/recipe.py). The seed is set before
the peft model is created, because that is when the LoRA weights are initialised. Training time
and peak memory are recorded with the adapter: on a GPU `torch.cuda.max_memory_allocated`, on a
CPU the process's peak resident memory.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from autotune.candidates.batching import length_grouped_batches, pad_batch
from autotune.candidates.data import Example
from autotune.candidates.recipe import encode, make_schedule
from autotune.evaluators.memory import PeakMemory

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainParams:
    """Everything that determines an adapter, besides the base model and the data."""

    lora_r: int
    lora_alpha: float
    lora_dropout: float
    learning_rate: float
    epochs: float
    batch_size: int
    max_seq_len: int
    target_modules: tuple[str, ...]
    seed: int
    method: str = "lora"  # lora | qlora
    dtype: str = "fp32"  # compute dtype: fp32 | bf16 | fp16
    gradient_checkpointing: bool = False
    quant_type: str | None = None  # qlora: nf4 | fp4
    double_quant: bool | None = None  # qlora: quantise the quantisation constants too
    lr_schedule: str = "constant"  # constant | one_cycle | linear | cosine (candidates/recipe.py)
    warmup_ratio: float = 0.03  # the schedule's warm-up share of the steps (not one_cycle)
    loss_span: str = "completion_eos"  # completion_eos | completion | whole_text


@dataclass(frozen=True)
class TrainResult:
    """A trained adapter folder and how training went (`peak_mem_mb`: see the module doc)."""

    path: Path
    train_loss: float
    eval_loss: float
    steps: int
    seconds: float
    checkpoint_losses: tuple[float, ...] = ()
    peak_mem_mb: float | None = None
    device: str = "cpu"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# Called at each checkpoint with (checkpoint index, eval loss); may raise to stop the training.
CheckpointHook = Callable[[int, float], None]


def checkpoint_steps(total_steps: int, checkpoints: int) -> list[int]:
    """The steps after which the eval loss is taken: `checkpoints` evenly spaced before the end."""
    steps = {round(total_steps * (i + 1) / (checkpoints + 1)) for i in range(checkpoints)}
    return sorted(s for s in steps if 0 < s < total_steps)


def len0(pair: tuple[list[int], list[int]]) -> int:
    return len(pair[0])


def _tensors(encoded, indices: list[int], pad_id: int, device: str):
    """(input ids, attention mask, labels) of the examples at `indices`, on `device`."""
    rows = [encoded[i] for i in indices]
    ids, mask = pad_batch([r[0] for r in rows], pad_id)
    labels, _ = pad_batch([r[1] for r in rows], -100)
    return ids.to(device), mask.to(device), labels.to(device)


def peft_targets(names: tuple[str, ...]) -> list[str] | str:
    """peft takes `all-linear` as a string, never inside a list."""
    return "all-linear" if names == ("all-linear",) else list(names)


def training_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str) -> str:
    """`auto` -> bf16 on a GPU that supports it, else fp32; other names unchanged."""
    if dtype != "auto":
        return dtype
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(device: str, dtype: str) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass in a 16-bit compute dtype; nothing for fp32."""
    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=TORCH_DTYPES[dtype])


def load_for_training(
    base_dir: Path, params: TrainParams, device: str, *, trust_remote_code: bool = False
):
    """The base model ready for peft: in the compute dtype (lora) or quantised to 4 bits (qlora)."""
    from transformers import AutoModelForCausalLM

    dtype = TORCH_DTYPES[params.dtype]
    if params.method == "lora":
        model = AutoModelForCausalLM.from_pretrained(
            base_dir, dtype=dtype, trust_remote_code=trust_remote_code
        ).to(device)
        if params.gradient_checkpointing:
            model.config.use_cache = False  # no key-value cache while recomputing activations
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        return model
    if params.method != "qlora":
        raise ValueError(f"unknown training method {params.method!r}; expected lora or qlora")
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=params.quant_type or "nf4",
        bnb_4bit_use_double_quant=bool(params.double_quant),
        bnb_4bit_compute_dtype=dtype,
    )
    model = AutoModelForCausalLM.from_pretrained(
        base_dir,
        dtype=dtype,
        quantization_config=quantization,
        device_map={"": device},
        trust_remote_code=trust_remote_code,
    )
    keep_cpu_training_layout(model)
    if params.gradient_checkpointing:
        model.config.use_cache = False
    return prepare_model_for_kbit_training(
        model,
        use_gradient_checkpointing=params.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
    )


def keep_cpu_training_layout(model) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference during training.

    bitsandbytes 0.50, on a CPU with AVX512-BF16, repacks a 4-bit layer's weight the first time
    the layer runs in eval mode without gradients (the checkpoint evaluations do) and keeps it
    so; from then on the layer's backward returns no input gradient, and training silently stops
    propagating through every quantised layer.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def completion_loss(
    model, encoded, batch_size: int, pad_id: int, device: str = "cpu", dtype: str = "fp32"
) -> float:
    """Mean loss over the completion tokens of `encoded` examples."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), autocast(device, dtype):
        for start in range(0, len(encoded), batch_size):
            indices = list(range(start, min(start + batch_size, len(encoded))))
            ids, mask, labels = _tensors(encoded, indices, pad_id, device)
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
) -> TrainResult:
    """Train a LoRA (or QLoRA) adapter on `train` and save it (peft format) to `out`.

    `evaluation` holds the examples the eval loss is taken on: at the end and, with
    `checkpoints`, at that many evenly spaced steps (recorded, and passed to `on_checkpoint`,
    which may stop training by raising). A small stratified subset ranks trainings as well as
    the whole split at a fraction of the cost (search/stages.py passes
    `strategy.checkpoint_examples` of them).
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
            on_checkpoint,
        )
    result = replace(result, peak_mem_mb=memory.peak_mb)
    info = {**asdict(result), "path": str(out), "params": asdict(params)}
    (out / "autotune_train.json").write_text(json.dumps(info, indent=2))
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

    def eval_loss(self, examples, params: TrainParams, device: str) -> float:
        return completion_loss(
            self.model, examples, params.batch_size, self.pad_id, device, params.dtype
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
    on_checkpoint: CheckpointHook | None,
) -> TrainResult:
    start = time.perf_counter()
    training = _set_up(base_dir, train, evaluation, params, device, trust_remote_code)
    at_steps = checkpoint_steps(training.total_steps, checkpoints)
    steps, losses, checkpoint_losses = _loop(training, params, device, at_steps, on_checkpoint)
    eval_loss = training.eval_loss(training.encoded_eval, params, device)
    training.model.save_pretrained(out)
    tail = losses[-training.steps_per_epoch :]
    seconds = time.perf_counter() - start
    train_loss = sum(tail) / len(tail)
    checkpoints_seen = tuple(checkpoint_losses)
    return TrainResult(out, train_loss, eval_loss, steps, seconds, checkpoints_seen, None, device)


def _set_up(
    base_dir: Path,
    train: list[Example],
    evaluation: list[Example],
    params: TrainParams,
    device: str,
    trust_remote_code: bool,
) -> _Training:
    """The base with its LoRA branches, the tokenised examples, AdamW and a one-cycle schedule."""
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
    steps_per_epoch = math.ceil(len(encoded) / params.batch_size)
    total_steps = max(1, round(params.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=params.learning_rate
    )
    schedule = make_schedule(
        optimizer, params.lr_schedule, params.learning_rate, total_steps, params.warmup_ratio
    )
    # fp16 gradients underflow without loss scaling; bf16 and fp32 need none.
    scaler = torch.amp.GradScaler(device, enabled=params.dtype == "fp16")
    return _Training(
        model,
        pad_id,
        encoded,
        encoded_eval,
        steps_per_epoch,
        total_steps,
        optimizer,
        schedule,
        scaler,
    )


def _loop(
    training: _Training,
    params: TrainParams,
    device: str,
    at_steps: list[int],
    on_checkpoint: CheckpointHook | None,
) -> tuple[int, list[float], list[float]]:
    """Train for `total_steps` in length-grouped batches, taking the eval loss at `at_steps`;
    the steps done, the training losses and the checkpoint losses."""
    model, encoded = training.model, training.encoded
    lengths = [len(ids) for ids, _ in encoded]
    generator = torch.Generator().manual_seed(params.seed)
    step, losses, checkpoint_losses = 0, [], []
    while step < training.total_steps:
        model.train()
        for indices in length_grouped_batches(lengths, params.batch_size, generator):
            ids, mask, labels = _tensors(encoded, indices, training.pad_id, device)
            with autocast(device, params.dtype):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at step {step}")
            training.scaler.scale(loss).backward()
            training.scaler.step(training.optimizer)
            training.scaler.update()
            training.schedule.step()
            training.optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
            if step in at_steps:
                checkpoint_losses.append(training.eval_loss(training.encoded_eval, params, device))
                if on_checkpoint is not None:
                    on_checkpoint(len(checkpoint_losses) - 1, checkpoint_losses[-1])
                model.train()
            if step >= training.total_steps:
                break
    return step, losses, checkpoint_losses


def load_train_result(path: Path) -> TrainResult:
    info = json.loads((path / "autotune_train.json").read_text())
    return TrainResult(
        path,
        info["train_loss"],
        info["eval_loss"],
        info["steps"],
        info["seconds"],
        tuple(info.get("checkpoint_losses", ())),
        info.get("peak_mem_mb"),
        info.get("device", "cpu"),
    )
