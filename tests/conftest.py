"""Shared fixtures. Everything runs offline: no hub lookups, no onnxruntime telemetry."""

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

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "spaces" / "tiny.yaml"
DATA = REPO / "spaces" / "data" / "tones.jsonl"


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
