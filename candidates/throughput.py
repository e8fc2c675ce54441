"""A training's throughput held against the machine: FLOPs per token, and the measured rate of
matrix products at the model's shapes in the training's dtype, as decode is held against memory
bandwidth.

FLOPs per trained token, counted from the model's linear layers (`in x out` each, the head
included; an embedding lookup does no multiply):

    (4 + 2g) * N_frozen + (6 + 2g) * N_lora

A linear layer of N weights costs 2N per token forward and 2N backward for the gradient of its
input; a frozen base layer needs no weight gradient (the textbook 6N counts one: 2N forward + 4N
backward), a LoRA weight does (2N more). `g` is 1 with gradient checkpointing (the forward is run
again), else 0. Attention's own products (QK^T and AV, 4·context·width a layer) are left out:
under 2% of a step at SmolLM2's width (576) and the tone prompts' 30 to 50 tokens. Only non-pad
tokens count: the achieved rate is useful work, padding is overhead.

The machine's rate is measured once per device, dtype, model shapes, thread count and torch
version, and kept in a small JSON file (`matmul_rates.json` at the stage cache's root): a few
timed `torch.matmul` calls of a micro-batch's rows (256, e.g. 8 sequences of 32 tokens) by each
distinct linear-layer shape, weighted as the model uses them, each the fastest of its calls. The
file is written under a lock, so workers sharing a cache measure it once; a worker training
meanwhile slows the measurement, though the fastest call is the least affected.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from autotune.candidates.cache import LOCKS, file_lock

RATES_FILE = "matmul_rates.json"
ROWS = 256  # rows of a timed product: one micro-batch's tokens
MIN_SECONDS = 0.2  # each shape is timed at least this long,
MIN_CALLS = 5  # and at least this often
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def linear_params(model: Any) -> tuple[int, int, Counter[tuple[int, int]]]:
    """(frozen linear weights, trainable linear weights, the frozen layers' (in, out) shapes with
    their counts) of a (peft) model. A layer's size is `in x out`: a 4-bit layer's packed
    weight has fewer elements than it multiplies."""
    frozen, trainable, shapes = 0, 0, Counter()
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        size = module.in_features * module.out_features
        if module.weight.requires_grad:
            trainable += size
        else:
            frozen += size
            shapes[(module.in_features, module.out_features)] += 1
    return frozen, trainable, shapes


def flops_per_token(frozen: int, trainable: int, checkpointing: bool = False) -> float:
    """FLOPs of one trained token's forward and backward (the module doc's formula)."""
    again = 2 if checkpointing else 0
    return (4 + again) * frozen + (6 + again) * trainable


def measure_matmul_rate(
    device: str, dtype: str, shapes: Counter[tuple[int, int]], rows: int = ROWS
) -> float:
    """FLOP/s of `rows x in` by `in x out` products in `dtype`, each shape weighted by its count:
    total FLOPs over total seconds, each product's seconds the fastest of its timed calls (a
    peak: a call that another process interrupted is slower, never faster)."""
    flops, seconds = 0.0, 0.0
    kind = TORCH_DTYPES[dtype]
    for (inner, outer), count in sorted(shapes.items()):
        a = torch.randn(rows, inner, device=device).to(kind)
        b = torch.randn(inner, outer, device=device).to(kind)
        torch.matmul(a, b)  # warm-up: kernel choice, caches
        fastest, calls, start = float("inf"), 0, time.perf_counter()
        while calls < MIN_CALLS or time.perf_counter() - start < MIN_SECONDS:
            before = time.perf_counter()
            torch.matmul(a, b)
            if device == "cuda":
                torch.cuda.synchronize()
            fastest = min(fastest, time.perf_counter() - before)
            calls += 1
        flops += count * 2.0 * rows * inner * outer
        seconds += count * fastest
    return flops / seconds


def machine_key(device: str, dtype: str, shapes: Counter[tuple[int, int]]) -> str:
    """What a measured rate depends on: the processor, threads, torch, dtype and shapes."""
    if device == "cuda":
        processor = torch.cuda.get_device_name()
    else:
        try:
            processor = str(torch.cpu.get_capabilities().get("cpu_name", ""))
        except (AttributeError, RuntimeError):
            processor = ""
    parts = [
        device,
        processor or "unknown",
        f"threads={torch.get_num_threads()}",
        f"torch={torch.__version__}",
        dtype,
        ",".join(f"{i}x{o}*{n}" for (i, o), n in sorted(shapes.items())),
    ]
    return "|".join(parts)


def cached_matmul_rate(
    rates: Path, device: str, dtype: str, shapes: Counter[tuple[int, int]]
) -> float:
    """The machine's matrix-product rate (FLOP/s) for `dtype` at `shapes`, measured on first
    use and kept in the JSON file `rates`."""
    key = machine_key(device, dtype, shapes)
    found = read_rates(rates)
    if key in found:
        return float(found[key])
    with file_lock(rates.parent / LOCKS / rates.name):
        found = read_rates(rates)  # measured by another process while this one waited
        if key not in found:
            found[key] = measure_matmul_rate(device, dtype, shapes)
            tmp = rates.with_name(f".{rates.name}.{os.getpid()}")
            tmp.write_text(json.dumps(found, indent=1, sort_keys=True))
            os.replace(tmp, rates)
    return float(found[key])


def read_rates(rates: Path) -> dict[str, float]:
    try:
        return dict(json.loads(rates.read_text()))
    except (OSError, ValueError):
        return {}
