"""`autotune cache ls|du|prune` on real stage caches built through `StageCache`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from autotune.candidates.cache import StageCache, list_entries, remove_entry

MIB = 1 << 20


def build(cache: StageCache, stage: str, key: str, mib: float = 1) -> Path:
    """A complete entry holding one file of `mib` MiB."""
    return cache.get_or_build(
        stage, key, lambda out: (out / "data.bin").write_bytes(b"x" * int(mib * MIB))
    )


def leftover(root: Path, stage: str, name: str, mib: float = 1) -> Path:
    """A folder without manifest, as a crash or a running build leaves it."""
    folder = root / stage / name
    folder.mkdir(parents=True)
    (folder / "half.bin").write_bytes(b"x" * int(mib * MIB))
    return folder


def make_old(folder: Path, hours: float) -> None:
    """Set the mtime of `folder` and of everything in it to `hours` ago."""
    stamp = time.time() - hours * 3600
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (stamp, stamp))


def autotune_cache(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "autotune", "cache", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


def rows(stdout: str) -> dict[str, list[str]]:
    """The body rows of the rich tables printed, by their first cell."""
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines()]
    return {row[0]: row[1:] for row in cells if row}


def keys(root: Path) -> set[tuple[str, str]]:
    return {(e.stage, e.key) for e in list_entries(root)}


def test_ls_shows_entries_with_size_age_and_build_time(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "base", "basekey", mib=1)
    build(cache, "onnx", "onnxkey", mib=3)
    done = autotune_cache("ls", "--cache", str(tmp_path))
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout)
    assert table["base"][:3] == ["basekey", "1.00", "0 s"]
    assert table["onnx"][:3] == ["onnxkey", "3.00", "0 s"]
    assert float(table["onnx"][3]) >= 0 and table["onnx"][4] == ""  # build seconds, no mark
    entries = list_entries(tmp_path)
    assert [e.stage for e in entries] == ["base", "onnx"]
    assert all(e.complete and e.seconds is not None for e in entries)
    assert entries[1].size_bytes > 3 * MIB  # the data and the manifest


def test_ls_marks_incomplete_entries_and_temporary_folders(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "onnx", "done")
    leftover(tmp_path, "onnx", "crashed")
    leftover(tmp_path, "onnx", ".tmp-building-0123abcd")
    done = autotune_cache("ls", "--cache", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = {line.split("│")[2].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "incomplete: no manifest" in lines["crashed"]
    assert "temporary build folder" in lines["building"]
    assert "incomplete" not in lines["done"] and "temporary" not in lines["done"]
    states = {e.key: e.state for e in list_entries(tmp_path)}
    assert states == {"done": "complete", "crashed": "incomplete", "building": "temporary"}


def test_ls_sorts_by_stage_then_newest_first(tmp_path):
    cache = StageCache(tmp_path)
    make_old(build(cache, "onnx", "old"), hours=5)
    build(cache, "onnx", "new")
    make_old(build(cache, "base", "b"), hours=30)
    assert [e.key for e in list_entries(tmp_path)] == ["b", "new", "old"]
    done = autotune_cache("ls", "--cache", str(tmp_path))
    table = rows(done.stdout)
    assert table["base"][0] == "b" and table["base"][2] == "30 h"
    lines = [line.split("│")[2].strip() for line in done.stdout.splitlines() if "│" in line]
    assert lines == ["b", "new", "old"] and "5 h" in done.stdout


def test_du_totals_per_stage(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "base", "b", mib=1)
    build(cache, "onnx", "o1", mib=1)
    build(cache, "onnx", "o2", mib=2)
    leftover(tmp_path, "onnx", "crashed", mib=0.5)
    done = autotune_cache("du", "--cache", str(tmp_path))
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout)
    assert table["base"] == ["1", "0", "1.00"]
    assert table["onnx"] == ["2", "1", "3.50"]
    assert table["total"] == ["3", "1", "4.50"]


def test_prune_stage_removes_only_that_stage(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "base", "b")
    build(cache, "onnx", "o1", mib=1)
    build(cache, "onnx", "o2", mib=2)
    done = autotune_cache("prune", "--cache", str(tmp_path), "--stage", "onnx")
    assert done.returncode == 0, done.stderr
    assert keys(tmp_path) == {("base", "b")}
    assert cache.has("base", "b") and not cache.has("onnx", "o1")
    assert "removed 2 entries: 3.00 MiB freed" in done.stdout


def test_prune_older_than_keeps_young_entries(tmp_path):
    cache = StageCache(tmp_path)
    make_old(build(cache, "onnx", "old"), hours=10)
    build(cache, "onnx", "young")
    done = autotune_cache("prune", "--cache", str(tmp_path), "--older-than", "8h")
    assert done.returncode == 0, done.stderr
    assert keys(tmp_path) == {("onnx", "young")}
    assert "old (1.00 MiB, 10 h old)" in done.stdout


def test_prune_stage_and_age_filters_combine(tmp_path):
    cache = StageCache(tmp_path)
    make_old(build(cache, "onnx", "old-onnx"), hours=48)
    make_old(build(cache, "base", "old-base"), hours=48)
    build(cache, "onnx", "new-onnx")
    done = autotune_cache("prune", "--cache", str(tmp_path), "--stage", "onnx", "--older-than=1d")
    assert done.returncode == 0, done.stderr
    assert keys(tmp_path) == {("base", "old-base"), ("onnx", "new-onnx")}


def test_prune_dry_run_removes_nothing(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "onnx", "o", mib=2)
    make_old(leftover(tmp_path, "onnx", "crashed"), hours=2)
    before = keys(tmp_path)
    done = autotune_cache("prune", "--cache", str(tmp_path), "--all", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert keys(tmp_path) == before and cache.has("onnx", "o")
    assert "would remove 2 entries: 3.00 MiB freed (dry run)" in done.stdout


def test_prune_all_removes_every_entry(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "base", "b")
    build(cache, "onnx", "o")
    done = autotune_cache("prune", "--cache", str(tmp_path), "--all")
    assert done.returncode == 0, done.stderr
    assert list_entries(tmp_path) == []


def test_prune_removes_stale_leftovers_and_keeps_young_ones(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "base", "b")
    make_old(leftover(tmp_path, "onnx", "crashed"), hours=2)
    make_old(leftover(tmp_path, "adapter", ".tmp-k-0123abcd"), hours=2)
    young = leftover(tmp_path, "onnx", ".tmp-running-89abcdef")
    done = autotune_cache("prune", "--cache", str(tmp_path), "--stage", "merged")
    assert done.returncode == 0, done.stderr
    assert keys(tmp_path) == {("base", "b"), ("onnx", "running")} and young.is_dir()
    assert "incomplete: no manifest" in done.stdout and "temporary build folder" in done.stdout
    assert f"kept {young}" in done.stdout and "build still running" in done.stdout
    assert "removed 2 entries" in done.stdout


def test_prune_without_filter_refuses(tmp_path):
    build(StageCache(tmp_path), "onnx", "o")
    done = autotune_cache("prune", "--cache", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--stage" in done.stderr and "--all" in done.stderr
    assert keys(tmp_path) == {("onnx", "o")}


def test_bad_input_is_one_line_with_exit_2(tmp_path):
    build(StageCache(tmp_path), "onnx", "o")
    cases = {
        ("ls", "--cache", str(tmp_path / "missing")): "no cache folder at",
        ("prune", "--cache", str(tmp_path), "--older-than", "soon"): "--older-than",
        ("prune", "--cache", str(tmp_path), "--stage", "nope"): "unknown stage 'nope'",
        ("prune", "--cache", str(tmp_path), "--all", "--stage", "onnx"): "--all",
    }
    for args, message in cases.items():
        done = autotune_cache(*args)
        assert done.returncode == 2, args
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert keys(tmp_path) == {("onnx", "o")}


def test_default_caches_are_the_run_folders(tmp_path):
    build(StageCache(tmp_path / "runs" / "a" / "cache"), "onnx", "in-a")
    build(StageCache(tmp_path / "runs" / "b" / "cache"), "base", "in-b")
    done = autotune_cache("ls", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "caches: runs/a/cache, runs/b/cache" in done.stdout
    assert "in-a" in done.stdout and "in-b" in done.stdout
    done = autotune_cache("du", cwd=tmp_path)
    assert "all caches: 2 entries, 2.00 MiB" in done.stdout


def test_no_run_folder_here_exits_2(tmp_path):
    done = autotune_cache("du", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no runs/*/cache folder" in done.stderr


def test_a_run_folder_is_not_taken_for_a_cache(tmp_path):
    run = tmp_path / "runs" / "tiny"
    build(StageCache(run / "cache"), "onnx", "o")
    trial = run / "trials" / "0"
    trial.mkdir(parents=True)
    make_old(trial, hours=5)
    assert list_entries(run) == []
    done = autotune_cache("prune", "--cache", str(run), "--all")
    assert done.returncode == 2 and "run folder" in done.stderr
    assert trial.is_dir()


def test_removed_entry_is_rebuilt_not_trusted(tmp_path):
    cache = StageCache(tmp_path)
    build(cache, "onnx", "o", mib=0.5)
    (entry,) = list_entries(tmp_path)
    assert remove_entry(entry) == entry.size_bytes
    assert not cache.has("onnx", "o") and not entry.path.exists()
    assert remove_entry(entry) == 0  # already gone
