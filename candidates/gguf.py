"""A base model from a GGUF file: dequantised once into a Hugging Face folder in the base cache.

transformers reads GGUF files (with the `gguf` package) and dequantises the weights to float32;
the folder it saves is then trained, merged and exported like any other base. The cache key is
the file's hash with the versions of the two readers, so a second study on the same file (or a
resumed one) skips the dequantisation (about 20 s for SmolLM2-135M on 2 cores).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from importlib.metadata import version
from pathlib import Path

from autotune.candidates.cache import StageCache, digest


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def gguf_base_key(path: Path) -> str:
    readers = {name: version(name) for name in ("transformers", "gguf")}
    return digest({"gguf": file_sha256(path), "readers": readers})


def dequantise(path: Path, out: Path) -> None:
    """Load the GGUF file with transformers (float32 weights) and save model and tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(path.parent), path.name
    log = io.StringIO()  # the reader's progress bar
    with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The loaded model still says it is GGUF-quantised and refuses to be saved; its weights are
    # plain float32 tensors by now.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def gguf_base(path: Path, cache: StageCache) -> tuple[Path, str]:
    """The dequantised folder of the GGUF file at `path` (built once) and its cache key."""
    key = gguf_base_key(path)
    return cache.get_or_build("base", f"gguf-{key}", lambda out: dequantise(path, out)), key
