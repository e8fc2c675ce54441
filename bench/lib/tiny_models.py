"""Models for the benchmarks, built from the embedded tiny space (and SmolLM2) into a stage cache.

Each model is built once with autotune's own stages (tiny base, LoRA adapter, merge, ONNX export)
and then reused from the cache folder. The cache folder holds a `.gitignore` of `*`, so git never
sees what is built there.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from autotune.candidates.base import BaseModel, resolve_base
from autotune.candidates.cache import StageCache, digest
from autotune.candidates.data import Dataset, load_dataset
from autotune.candidates.export import ExportParams, export_onnx
from autotune.candidates.merge import merge_adapter
from autotune.candidates.train import TrainParams, train_adapter
from autotune.search.params import train_params, with_defaults
from autotune.spaces import DEFAULT_SPACE, SPACES_DIR, Space, load_space

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / ".cache"  # bench/.cache

# The knobs of the best fp32 trial of a 12-trial tiny study (accuracy 0.71 there).
TRAINED_KNOBS = {"lora_r": 64, "lora_alpha": 128.0, "lora_dropout": 0.05, "learning_rate": 7e-4}


def tiny_space() -> Space:
    return load_space(DEFAULT_SPACE, "cpu")


def tiny_dataset() -> Dataset:
    """The tiny space's fixed train/eval split."""
    return load_dataset(tiny_space())


def stage_cache(folder: Path) -> StageCache:
    """A stage cache in `folder`, which is created ignored by git."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return StageCache(folder)


def tiny_base(cache: StageCache, torch_threads: int = 2) -> tuple[Space, Dataset, BaseModel]:
    """The tiny space, its data and its pretrained base (built on first use, ~20 s)."""
    import torch

    torch.set_num_threads(torch_threads)
    space = tiny_space()
    dataset = load_dataset(space)
    return space, dataset, resolve_base(space, dataset, cache)


def cached_export(cache: StageCache, source: Path, source_key: str, params: ExportParams) -> Path:
    """`source` (a Hugging Face model folder) exported to ONNX, cached by its key and params."""
    key = digest({"bench-source": source_key, "export": asdict(params)})
    return cache.get_or_build("onnx", key, lambda out: export_onnx(source, params, out))


def int4_base_model(cache_dir: Path) -> Path:
    """The untrained tiny base exported at int4 (block size 32, accuracy level 4) for cpu."""
    cache = stage_cache(cache_dir)
    _, _, base = tiny_base(cache)
    params = ExportParams("int4", "cpu", int4_block_size=32, int4_accuracy_level=4)
    return cached_export(cache, base.path, base.key, params)


def trained_fp32_model(cache_dir: Path) -> Path:
    """The tiny base fine-tuned with `TRAINED_KNOBS`, merged and exported at fp32 for cpu."""
    cache = stage_cache(cache_dir)
    space, dataset, base = tiny_base(cache)
    training = train_params(with_defaults(TRAINED_KNOBS, space), space)
    merged, merged_key = cached_merged(cache, base, dataset, training)
    return cached_export(cache, merged, merged_key, ExportParams("fp32", "cpu"))


def cached_merged(
    cache: StageCache, base: BaseModel, dataset: Dataset, training: TrainParams
) -> tuple[Path, str]:
    """`base` fine-tuned on `dataset` with `training` and merged: the folder and its key."""
    adapter_key = digest({"bench-base": base.key, "train": asdict(training)})
    adapter = cache.get_or_build(
        "adapter",
        adapter_key,
        lambda out: train_adapter(base.path, dataset.train, dataset.eval, training, out),
    )
    merged_key = digest({"bench-adapter": adapter_key})
    merged = cache.get_or_build(
        "merged", merged_key, lambda out: merge_adapter(base.path, adapter, out)
    )
    return merged, merged_key


def smollm2_int4(cache_dir: Path) -> tuple[Path, list[str]]:
    """The untrained SmolLM2 base at int4, and its space's eval prompts."""
    space = load_space(SPACES_DIR / "smollm2.yaml", "cpu")
    dataset = load_dataset(space)
    cache = stage_cache(cache_dir)
    base = resolve_base(space, dataset, cache)
    model = cached_export(cache, base.path, base.key, ExportParams("int4", "cpu"))
    return model, [e.prompt for e in dataset.eval]
