"""LoRA training with peft: the adapter of one candidate.

The loss is computed on the completion tokens only (the prompt is masked out): with the loss over
the whole text a small model learns the phrases and collapses to one label. The seed is set before
the peft model is created, because that is when the LoRA weights are initialised.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from autotune.candidates.batching import length_grouped_batches, pad_batch
from autotune.candidates.data import Example


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


@dataclass(frozen=True)
class TrainResult:
    """A trained adapter folder and how training went."""

    path: Path
    train_loss: float
    eval_loss: float
    steps: int
    seconds: float
    checkpoint_losses: tuple[float, ...] = ()


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# Called at each checkpoint with (checkpoint index, eval loss); may raise to stop the training.
CheckpointHook = Callable[[int, float], None]
CHECKPOINT_EXAMPLES = 256  # eval examples the checkpoint losses are taken on


def checkpoint_steps(total_steps: int, checkpoints: int) -> list[int]:
    """The steps after which the eval loss is taken: `checkpoints` evenly spaced before the end."""
    steps = {round(total_steps * (i + 1) / (checkpoints + 1)) for i in range(checkpoints)}
    return sorted(s for s in steps if 0 < s < total_steps)


def encode(tokenizer, example: Example, max_len: int) -> tuple[list[int], list[int]]:
    """Token ids of prompt + completion + EOS, and labels that mask the prompt with -100."""
    prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    completion = tokenizer(example.completion, add_special_tokens=False)["input_ids"]
    completion = completion + [tokenizer.eos_token_id]
    prompt = prompt[-max(1, max_len - len(completion)) :]
    return prompt + completion, [-100] * len(prompt) + completion


def _tensors(encoded, indices: list[int], pad_id: int, device: str):
    """(input ids, attention mask, labels) of the examples at `indices`, on `device`."""
    rows = [encoded[i] for i in indices]
    ids, mask = pad_batch([r[0] for r in rows], pad_id)
    labels, _ = pad_batch([r[1] for r in rows], -100)
    return ids.to(device), mask.to(device), labels.to(device)


def completion_loss(model, encoded, batch_size: int, pad_id: int, device: str = "cpu") -> float:
    """Mean loss over the completion tokens of `encoded` examples."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
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
    """Train a LoRA adapter on `train` and save it (peft format) to `out`.

    With `checkpoints`, the completion loss on (up to 256 of) the eval examples is taken at that
    many evenly spaced steps, recorded, and passed to `on_checkpoint`, which may stop training by
    raising.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(
        base_dir, dtype=torch.float32, trust_remote_code=trust_remote_code
    ).to(device)

    torch.manual_seed(params.seed)  # before get_peft_model: the LoRA weights are made there
    lora = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=list(params.target_modules),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)

    encoded = [encode(tokenizer, e, params.max_seq_len) for e in train]
    encoded_eval = [encode(tokenizer, e, params.max_seq_len) for e in evaluation]
    lengths = [len(ids) for ids, _ in encoded]
    steps_per_epoch = math.ceil(len(encoded) / params.batch_size)
    total_steps = max(1, round(params.epochs * steps_per_epoch))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=params.learning_rate
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=params.learning_rate,
        total_steps=total_steps,
        pct_start=0.1,
        anneal_strategy="linear",
    )
    generator = torch.Generator().manual_seed(params.seed)
    at_steps = checkpoint_steps(total_steps, checkpoints)
    checkpoint_losses: list[float] = []

    step, losses = 0, []
    while step < total_steps:
        model.train()
        for indices in length_grouped_batches(lengths, params.batch_size, generator):
            ids, mask, labels = _tensors(encoded, indices, pad_id, device)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} at step {step}")
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
            if step in at_steps:
                sample = encoded_eval[:CHECKPOINT_EXAMPLES]
                loss_now = completion_loss(model, sample, params.batch_size, pad_id, device)
                checkpoint_losses.append(loss_now)
                if on_checkpoint is not None:
                    on_checkpoint(len(checkpoint_losses) - 1, loss_now)
                model.train()
            if step >= total_steps:
                break

    eval_loss = completion_loss(model, encoded_eval, params.batch_size, pad_id, device)
    model.save_pretrained(out)
    tail = losses[-steps_per_epoch:]
    seconds = time.perf_counter() - start
    result = TrainResult(
        out, sum(tail) / len(tail), eval_loss, step, seconds, tuple(checkpoint_losses)
    )
    (out / "autotune_train.json").write_text(
        json.dumps({**asdict(result), "path": str(out), "params": asdict(params)}, indent=2)
    )
    return result


def load_train_result(path: Path) -> TrainResult:
    info = json.loads((path / "autotune_train.json").read_text())
    return TrainResult(
        path,
        info["train_loss"],
        info["eval_loss"],
        info["steps"],
        info["seconds"],
        tuple(info.get("checkpoint_losses", ())),
    )
