"""The model a training runs on: the base in its compute dtype or quantised to 4 bits, the device
and the mixed-precision context (what `candidates/train.py` sets up before its loop).

`train.dtype: auto` trains in bf16 wherever the hardware multiplies bf16 natively: a CUDA GPU that
supports it, or a CPU with AVX-512 BF16 or AMX-BF16 instructions. There the frozen base is held in
bf16, the LoRA weights and AdamW's moments stay fp32 (peft keeps adapters in fp32) and the forward
pass runs under CPU autocast. Measured on a 2-core AMD EPYC with AVX-512 BF16 (torch 2.13, 2
threads, 2026-12-03): matrix products at SmolLM2-135M's shapes run at about 150 GFLOP/s in fp32 and
365-375 GFLOP/s in bf16, and a SmolLM2 LoRA step took 1.68-2.00 s in fp32, 1.18 s under bf16
autocast with fp32 weights and 1.09 s with bf16 frozen weights (bench/train_dtype.py compares
seconds per step and accuracy). A CPU without those instructions emulates bf16, slower than fp32,
so there `auto` stays fp32.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from autotune.candidates.train import TrainParams

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def peft_targets(names: tuple[str, ...]) -> list[str] | str:
    """peft takes `all-linear` as a string, never inside a list."""
    return "all-linear" if names == ("all-linear",) else list(names)


def training_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# CPU instructions that multiply bf16 natively (x86 names, as torch and /proc/cpuinfo spell them).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively: torch's own detection (cpuinfo, which also sees
    what the OS enables), else the flags of /proc/cpuinfo."""
    try:
        capabilities = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # an older torch
        capabilities = None
    if capabilities is not None:
        return any(bool(capabilities.get(flag)) for flag in CPU_BF16_FLAGS)
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    lines = (line for line in text.splitlines() if line.startswith("flags"))
    flags = {word for line in lines for word in line.split()}
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_dtype(dtype: str) -> str:
    """`auto` -> bf16 on a GPU that supports it, or on a CPU with bf16 instructions (the module
    doc says why); else fp32. Other names unchanged."""
    if dtype != "auto":
        return dtype
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_bf16() else "fp32"


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
