"""The stage cache reuses complete entries and never trusts a half-written one."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

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


def _build_slowly(root: Path, log: Path) -> None:
    """In a process of its own: get or build one entry, logging each real build."""

    def build(out: Path) -> None:
        with log.open("a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the other process to ask for the entry meanwhile
        (out / "weights.bin").write_bytes(str(os.getpid()).encode())

    StageCache(root).get_or_build("onnx", "k", build)


def test_two_processes_asking_for_one_entry_build_it_once(tmp_path):
    log = tmp_path / "builds.log"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_build_slowly, args=(tmp_path, log)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    builders = log.read_text().split()
    assert len(builders) == 1  # the second process waited for the first's entry
    entry = tmp_path / "onnx" / "k"
    assert (entry / MANIFEST).is_file() and (entry / "weights.bin").read_text() == builders[0]
    folders = [p.name for p in (tmp_path / "onnx").iterdir() if p.is_dir()]
    assert folders == ["k"]  # no temporary folder left
