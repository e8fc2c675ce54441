"""Merge a LoRA or QLoRA adapter into its base: the plain Hugging Face model the exporter reads.

The base is always loaded unquantised, in `dtype` (fp32, or bf16/fp16 for an adapter trained in
16 bits: the weights its training saw), the adapter applied and `merge_and_unload` called. A bf16
merged model (bf16 training on a GPU, or on a CPU with bf16 instructions) is half the size of an
fp32 one, and the builder exports it at any precision: at fp32 its weights are widened exactly,
at int4 quantised from bf16 (tests/test_train_dtype.py exports one at both).

For a QLoRA adapter this means the adapter, trained against the 4-bit (NF4) base, is merged into
the 16-bit base it was quantised from: the result holds ordinary weights `W + B·A`, so the model
builder exports it at any precision like a LoRA candidate. (Merging into the 4-bit base instead
would give `deq(q(W)) + B·A`, with the quantisation error of the base baked in, or a
bitsandbytes-quantised checkpoint the builder does not read.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

# Tokenizer files the onnxruntime-genai builder copies next to the exported model.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
)
MERGE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def merge_adapter(
    base_dir: Path,
    adapter_dir: Path,
    out: Path,
    *,
    dtype: str = "fp32",
    trust_remote_code: bool = False,
) -> Path:
    """Load the base unquantised in `dtype`, apply the adapter, merge it, and save to `out`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        base_dir, dtype=MERGE_DTYPES[dtype], trust_remote_code=trust_remote_code
    )
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    if getattr(merged.config, "quantization_config", None) is not None:
        raise RuntimeError(f"the merged model from {base_dir} is quantised; expected plain weights")
    merged.save_pretrained(out)
    copy_tokenizer(base_dir, out)
    return out


def copy_tokenizer(source: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (Path(source) / name).is_file():
            shutil.copy2(Path(source) / name, out / name)
