"""The base model of a space, resolved to a local folder and an identity for the stage cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autotune.candidates.cache import StageCache, folder_digest
from autotune.candidates.data import Dataset
from autotune.candidates.gguf import gguf_base
from autotune.candidates.tiny import build_tiny_base
from autotune.spaces import Space, gguf_path, model_path, model_source


@dataclass(frozen=True)
class BaseModel:
    """A base model folder and the key that identifies its content."""

    path: Path
    key: str
    description: str


def resolve_base(space: Space, dataset: Dataset, cache: StageCache) -> BaseModel:
    """Build the tiny base, dequantise a GGUF file, hash a local folder, or fetch a hub snapshot
    (cached by the hub)."""
    source = model_source(space)
    if source == "tiny":
        assert space.model.tiny is not None
        tiny = build_tiny_base(space.model.tiny, dataset, cache)
        return BaseModel(
            tiny.path, f"tiny:{tiny.key}", f"tiny Phi-3 ({tiny.parameters:,} parameters)"
        )
    if source == "gguf":
        file = gguf_path(space)
        path, key = gguf_base(file, cache)
        return BaseModel(path, f"gguf:{key}", f"{file.name} (GGUF, dequantised to float32)")
    if source == "local":
        path = Path(model_path(space))
        return BaseModel(path, f"local:{folder_digest(path)}", str(path))
    from huggingface_hub import snapshot_download

    repo = space.model.path or ""
    path = Path(snapshot_download(repo, revision=space.model.revision))
    # The snapshot folder is named after the commit: hub id + commit identifies the content.
    return BaseModel(path, f"hub:{repo}@{path.name}", f"{repo}@{path.name}")
