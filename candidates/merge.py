"""Merge a LoRA adapter into its base: the plain Hugging Face model that the exporter reads."""

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


def merge_adapter(
    base_dir: Path, adapter_dir: Path, out: Path, *, trust_remote_code: bool = False
) -> Path:
    """Load the base in float32, apply the adapter, `merge_and_unload`, and save to `out`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        base_dir, dtype=torch.float32, trust_remote_code=trust_remote_code
    )
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out)
    copy_tokenizer(base_dir, out)
    return out


def copy_tokenizer(source: Path, out: Path) -> None:
    for name in TOKENIZER_FILES:
        if (Path(source) / name).is_file():
            shutil.copy2(Path(source) / name, out / name)
