"""Shared fixtures. Everything runs offline: no hub lookups, no onnxruntime telemetry.

Two tiers: tests marked `slow` train, export, measure an ONNX model, run a study or start a
worker (seconds to minutes); the rest, `pytest -m "not slow"`, take a couple of minutes in all.
A test not marked slow that reaches slow work fails (tests/fast_tier/refuse_slow_work.py).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import yaml  # noqa: E402

from tests.fast_tier.refuse_slow_work import refusing_slow_work  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "spaces" / "tiny.yaml"
DATA = REPO / "spaces" / "data" / "tones.jsonl"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A test not marked slow runs (fixtures included) with the slow work refused."""
    if item.get_closest_marker("slow"):
        return (yield)
    with refusing_slow_work():
        return (yield)


def tiny_dict() -> dict:
    """The embedded tiny space as a dict, its data path made absolute."""
    raw = yaml.safe_load(TINY.read_text())
    raw["data"]["files"] = str(DATA)
    return raw


def merge(base: dict, changes: dict) -> dict:
    """A deep copy of `base` with `changes` applied; a value of None deletes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


@pytest.fixture
def write_space(tmp_path):
    """write_space(changes) -> path of a space file: the tiny space with `changes` applied."""

    def write(
        changes: dict | None = None, text: str | None = None, name: str = "space.yaml"
    ) -> Path:
        path = tmp_path / name
        path.write_text(
            text if text is not None else yaml.safe_dump(merge(tiny_dict(), changes or {}))
        )
        return path

    return write


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One stage cache for the whole session, so the tiny base is built once."""
    return Path(os.environ.get("AUTOTUNE_TEST_CACHE") or tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny(shared_cache):
    """The tiny space, its data split and its base model (built once per session)."""
    from autotune.candidates.base import resolve_base
    from autotune.candidates.cache import StageCache
    from autotune.candidates.data import load_dataset
    from autotune.spaces import load_space

    space = load_space(REPO / "spaces" / "tiny.yaml", "cpu")
    dataset = load_dataset(space)
    base = resolve_base(space, dataset, StageCache(shared_cache))
    return space, dataset, base


@pytest.fixture(scope="session")
def candidate(tiny, tmp_path_factory):
    """One short LoRA training of the tiny base, merged and exported to fp32."""
    from autotune.candidates.export import ExportParams, export_onnx
    from autotune.candidates.merge import merge_adapter
    from autotune.candidates.train import TrainParams, train_adapter

    space, dataset, base = tiny
    root = tmp_path_factory.mktemp("candidate")
    params = TrainParams(
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        learning_rate=2e-3,
        epochs=1,
        batch_size=16,
        max_seq_len=128,
        target_modules=tuple(space.train.target_modules),
        seed=0,
        # 16 steps that decay to zero: the briefly trained model the scoring tests were
        # calibrated on (a constant rate, the default, leaves it at another point)
        lr_schedule="one_cycle",
    )
    (root / "adapter").mkdir()
    train_adapter(base.path, dataset.train[:256], dataset.eval[:32], params, root / "adapter")
    (root / "merged").mkdir()
    merge_adapter(base.path, root / "adapter", root / "merged")
    (root / "fp32").mkdir()
    export_onnx(root / "merged", ExportParams("fp32", "cpu"), root / "fp32")
    return root


def assert_generates(model_dir: Path) -> None:
    import onnxruntime_genai as og

    from autotune.evaluators.runtime import open_model

    model = open_model(model_dir, "cpu", 1)
    tokenizer = og.Tokenizer(model)
    params = og.GeneratorParams(model)
    prompt = tokenizer.encode("### Text: What a lovely surprise party!\n### The tone is:\n")
    params.set_search_options(do_sample=False, max_length=len(prompt) + 3)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    while not generator.is_done():
        generator.generate_next_token()
    assert len(generator.get_sequence(0)) > len(prompt)
