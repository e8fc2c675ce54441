"""Continuing a study after `kill -9`, and one process per run folder: real processes, real kills.

Each test has its own stage cache, so its trainings are never found cached from an earlier run;
the tiny base is not pretrained (a few seconds to build) and the eval split is small, so a
training takes seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from autotune.candidates.cache import MANIFEST, TMP_PREFIX
from autotune.search.record import Attr

pytestmark = pytest.mark.slow

FAST = {
    "model": {"tiny": {"pretrain_epochs": 0}},
    "data": {"eval_fraction": 0.02},
    "train": {"epochs": 0.1},
    "latency": {"repeats": 3},
    "strategy": {"expand": [], "checkpoints": 1, "prune": False, "fidelity": None},
}


def command(space: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "autotune", "--space", str(space), "--target", "cpu",
        "--out", str(out), "--cache", str(cache), *extra,
    ]  # fmt: skip


def build_folders(cache: Path, stage: str = "adapter") -> set[Path]:
    """The build folders (`.tmp-<key>-<hex>`) of a stage in the cache now."""
    folder = cache / stage
    if not folder.is_dir():
        return set()
    return {p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)}


def wait_for_training(proc: subprocess.Popen, cache: Path, after: Path | None = None) -> Path:
    """The adapter build folder of a training that starts (after `after` exists, if given)."""
    deadline = time.monotonic() + 300
    known: set[Path] | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the study ended (exit {proc.returncode}) before training"
        if known is None and (after is None or after.exists()):
            known = build_folders(cache)
        if known is not None and (new := build_folders(cache) - known):
            return new.pop()
        time.sleep(0.005)
    raise AssertionError("no training started within 300 s")


def kill_during_training(
    argv: list[str], cache: Path, log: Path, after_s: float, after: Path | None = None
) -> Path:
    """Run `argv`, send SIGKILL `after_s` seconds into an adapter build (one that starts after
    `after` exists, if given); the build folder."""
    with log.open("w") as output:
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        try:
            build = wait_for_training(proc, cache, after=after)
            time.sleep(after_s)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return build


def trials(out: Path) -> dict[int, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    return {t.number: t for t in study.get_trials()}


def test_kill_during_training_then_the_same_command_finishes_the_study(write_space, tmp_path):
    space, out, cache = write_space(FAST), tmp_path / "run", tmp_path / "cache"
    argv = command(space, out, cache, "--trials", "2")
    first_done = out / "trials" / "0" / "metrics.json"
    build = kill_during_training(argv, cache, tmp_path / "killed.log", 0.5, first_done)
    killed_at = time.time()
    assert build.is_dir(), "the training finished before the kill"
    before = trials(out)
    assert [(n, t.state.name) for n, t in before.items()] == [(0, "COMPLETE"), (1, "RUNNING")]

    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "were interrupted" in again.stderr
    after = trials(out)
    complete = [t for t in after.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2
    assert (after[0].state, after[0].params, after[0].values) == (
        before[0].state,
        before[0].params,
        before[0].values,
    )
    assert after[1].state == optuna.trial.TrialState.FAIL
    assert after[1].user_attrs["error"].startswith("interrupted")
    (retry,) = [t for t in complete if t.user_attrs.get("retry_of") == 1]
    assert retry.params == before[1].params

    # The killed build folder was not trusted: the retry trained its adapter again.
    key = retry.user_attrs[Attr.ADAPTER_KEY]
    assert build.name.startswith(f"{TMP_PREFIX}{key}-")
    adapter = cache / "adapter" / key
    assert (adapter / MANIFEST).is_file() and (adapter / MANIFEST).stat().st_mtime > killed_at
    assert retry.user_attrs["seconds"]["train"] > 0.5


def test_kill_during_a_rung_continuation_resumes_from_the_rung_checkpoint(write_space, tmp_path):
    # Two rungs: the first ends at a third of the epoch and is saved as a `rung` cache entry;
    # the kill comes while the second part (the continuation) builds the adapter.
    fidelity = {"rungs": 2, "eta": 3, "screen": 1}  # the first training goes on at once
    changes = {"train": {"epochs": 1}, "data": {**FAST["data"], "max_train": 1200}}
    space = write_space({**FAST, **changes, "strategy": {**FAST["strategy"], "fidelity": fidelity}})
    out, cache = tmp_path / "run", tmp_path / "cache"
    argv = command(space, out, cache, "--trials", "1")
    build = kill_during_training(argv, cache, tmp_path / "killed.log", 0.3)
    killed_at = time.time()
    assert build.is_dir(), "the continuation finished before the kill"
    (rung,) = [p for p in (cache / "rung").iterdir() if (p / MANIFEST).is_file()]
    rung_manifest = (rung / MANIFEST).read_text()
    assert (rung / "training_state.pt").is_file()  # optimiser and schedule saved with it

    again = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    after = trials(out)
    assert after[0].state == optuna.trial.TrialState.FAIL
    assert after[0].user_attrs["error"].startswith("interrupted")
    (retry,) = [t for t in after.values() if t.state == optuna.trial.TrialState.COMPLETE]
    assert retry.user_attrs.get("retry_of") == 0
    assert (
        retry.user_attrs[Attr.RUNG]["reached"] == 2 and not retry.user_attrs[Attr.RUNG]["stopped"]
    )
    # The first rung was not trained again: its entry is the one the killed run saved, and the
    # adapter was trained from its step on.
    assert (rung / MANIFEST).read_text() == rung_manifest
    assert [p for p in (cache / "rung").iterdir() if (p / MANIFEST).is_file()] == [rung]
    adapter = cache / "adapter" / retry.user_attrs[Attr.ADAPTER_KEY]
    assert (adapter / MANIFEST).stat().st_mtime > killed_at
    trained = json.loads((adapter / "autotune_train.json").read_text())
    first_end = retry.user_attrs[Attr.RUNG]["ends"][0]
    assert trained["resumed_from"] == first_end > 0
    assert trained["steps"] == trained["total_steps"] == retry.user_attrs[Attr.RUNG]["ends"][1]


def test_a_second_process_on_the_same_run_folder_is_refused(write_space, tmp_path):
    # A full epoch, so the first study is still training when the second one starts up.
    space = write_space({**FAST, "train": {"epochs": 1}})
    out, cache = tmp_path / "run", tmp_path / "cache"
    argv = command(space, out, cache, "--trials", "1")
    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_training(first, cache)
            second = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            still_running = first.poll() is None
            states = [t.state.name for t in trials(out).values()]
        finally:
            first.kill()  # SIGKILL, unless it has ended
            first.wait()
    assert second.returncode == 2, f"not refused: exit {second.returncode}\n{second.stderr[-2000:]}"
    assert still_running
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out.resolve()) in lines[0], second.stderr
    assert "in use by another autotune process" in lines[0]
    assert states == ["RUNNING"]  # the refused process left the running trial alone
