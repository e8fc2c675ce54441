"""The stage cache reuses complete entries and never trusts a half-written one."""

from __future__ import annotations

import pytest
from autotune.candidates.cache import MANIFEST, StageCache, digest, folder_digest


def test_digest_is_stable_and_order_free():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_entry_is_built_once(tmp_path):
    cache, calls = StageCache(tmp_path), []

    def build(out):
        calls.append(out)
        (out / "weights.bin").write_bytes(b"x")

    first = cache.get_or_build("onnx", "k1", build)
    second = cache.get_or_build("onnx", "k1", build)
    assert first == second and len(calls) == 1
    assert (first / "weights.bin").read_bytes() == b"x" and (first / MANIFEST).is_file()


def test_failed_build_leaves_nothing(tmp_path):
    cache = StageCache(tmp_path)

    def broken(out):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_build("onnx", "k", broken)
    assert not cache.has("onnx", "k")
    assert list((tmp_path / "onnx").iterdir()) == []


def test_entry_without_manifest_is_rebuilt(tmp_path):
    cache = StageCache(tmp_path)
    stale = cache.path("onnx", "k")
    stale.mkdir(parents=True)
    (stale / "half.bin").write_bytes(b"old")
    path = cache.get_or_build("onnx", "k", lambda out: (out / "full.bin").write_bytes(b"new"))
    assert (path / "full.bin").is_file() and not (path / "half.bin").exists()


def test_folder_digest_tracks_content(tmp_path):
    (tmp_path / "a.txt").write_text("1")
    before = folder_digest(tmp_path)
    (tmp_path / "a.txt").write_text("2")
    assert folder_digest(tmp_path) != before


def test_two_builders_of_one_entry_both_end_with_the_complete_one(tmp_path):
    cache = StageCache(tmp_path)

    def other_process_finishes_first(out):
        (out / "weights.bin").write_bytes(b"mine")
        # While this build runs, another builder of the same key completes its entry.
        cache.get_or_build(
            "onnx", "k", lambda theirs: (theirs / "weights.bin").write_bytes(b"theirs")
        )

    entry = cache.get_or_build("onnx", "k", other_process_finishes_first)
    assert (entry / "weights.bin").read_bytes() == b"theirs" and (entry / MANIFEST).is_file()
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["k"]  # no temporary folder left
