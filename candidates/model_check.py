"""What a base model folder must be before anything trains: a config the ONNX builder exports,
and LoRA target modules that exist in it.

- The architecture (`config.json: architectures[0]`) must be one the installed onnxruntime-genai
  model builder dispatches on. The list is read from the builder's own source, so an upgrade that
  adds or drops an architecture changes it without a copy here going stale.
- Every `train.target_modules` name must match a module of the model the way peft matches it
  (the module's name, or its last dotted parts). Without `target_modules` the architecture's
  default is used; `all-linear` is every linear layer but the head.

The model's modules come from its config alone, instantiated on the meta device: no weights
are read, so the check takes about a second even for a large model.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

from autotune.spaces import Space, SpaceError

CONFIG = "config.json"
# config.json keys every architecture the builder exports has.
REQUIRED_CONFIG = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "vocab_size")
ALL_LINEAR = "all-linear"
_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
# LoRA targets when the space names none: the attention projections, as the reference workflow
# adapts them (Phi-3 fuses q, k and v into one qkv_proj); other architectures: all-linear.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "Phi3ForCausalLM": ["qkv_proj", "o_proj"],
    "LlamaForCausalLM": _ATTENTION,
    "MistralForCausalLM": _ATTENTION,
    "Qwen2ForCausalLM": _ATTENTION,
    "Qwen3ForCausalLM": _ATTENTION,
    "GemmaForCausalLM": _ATTENTION,
    "Gemma2ForCausalLM": _ATTENTION,
    "Gemma3ForCausalLM": _ATTENTION,
}


def builder_architectures() -> list[str]:
    """The architectures the installed model builder exports, read from its dispatch
    (`config.architectures[0] == "..."` in onnxruntime_genai/models/builder.py)."""
    found = importlib.util.find_spec("onnxruntime_genai")
    folders = list(found.submodule_search_locations or []) if found else []
    if not folders:
        raise SpaceError("onnxruntime-genai", "", "the model builder is not installed")
    tree = ast.parse((Path(folders[0]) / "models" / "builder.py").read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and "architectures" in ast.unparse(node.left):
            names.update(
                c.value
                for c in node.comparators
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return sorted(names)


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a model folder, with the keys the builder needs; SpaceError naming the
    file and the key otherwise."""
    path = folder / CONFIG
    if not path.is_file():
        raise SpaceError(path, "", "missing; expected a model folder with a config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SpaceError(path, "", f"not valid JSON: {error}") from None
    if not isinstance(config, dict):
        raise SpaceError(path, "", "expected a JSON object")
    for key in REQUIRED_CONFIG:
        if key not in config:
            raise SpaceError(path, key, "required, but missing")
    architectures = config["architectures"]
    if not (
        isinstance(architectures, list) and architectures and isinstance(architectures[0], str)
    ):
        raise SpaceError(path, "architectures", f"expected a list of names, got {architectures!r}")
    return config


def module_names(folder: Path, trust_remote_code: bool = False) -> list[str]:
    """Dotted names of the model's linear and embedding modules (what LoRA can adapt), from the
    config on the meta device."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, TypeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpaceError(
            folder / CONFIG, "", f"transformers cannot build the model: {first}"
        ) from None
    kinds = (torch.nn.Linear, torch.nn.Embedding)
    return [name for name, module in model.named_modules() if isinstance(module, kinds)]


def matches(target: str, name: str) -> bool:
    """peft's rule for a list of target names: the module's full name or its dotted suffix."""
    return name == target or name.endswith(f".{target}")


def check_base(space: Space, folder: Path) -> str:
    """Check the base folder against the builder and the space; resolve the default target
    modules into `space.train.target_modules`. Returns the architecture."""
    config = read_config(folder)
    architecture = config["architectures"][0]
    exported = builder_architectures()
    if architecture not in exported:
        raise SpaceError(
            folder / CONFIG,
            "architectures",
            f"{architecture!r} is not an architecture the installed onnxruntime-genai model "
            f"builder exports; it exports: {', '.join(exported)}",
        )
    if space.train.target_modules is None:
        space.train.target_modules = DEFAULT_TARGETS.get(architecture, [ALL_LINEAR])
    if space.train.target_modules == [ALL_LINEAR]:
        return architecture
    names = module_names(folder, space.model.trust_remote_code)
    for target in space.train.target_modules:
        if not any(matches(target, name) for name in names):
            leaves = sorted({name.rsplit(".", 1)[-1] for name in names})
            raise SpaceError(
                space.source,
                "train.target_modules",
                f"{target!r} matches no module of this {architecture}; its linear and embedding "
                f"modules are: {', '.join(leaves)} (or use all-linear)",
            )
    return architecture
