"""Workers sharing one study: real processes on a real PostgreSQL server or a journal file.

Each worker is its own `autotune` process with its own run folder (as on its own machine), all
naming one storage and study and, as on a shared NFS folder, one stage cache.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pandas as pd
import pytest

from autotune.search.budget import SURPLUS
from autotune.search.record import Attr
from autotune.search.workers import Placement
from tests.postgres import postgres_server

pytestmark = pytest.mark.slow

State = optuna.trial.TrialState
BUDGET = 12
# A training of a fraction of an epoch on an unpretrained tiny base, one thread, a small eval
# split and no precision siblings: every trial trains, in a few seconds.
FAST = {
    "model": {"tiny": {"pretrain_epochs": 0}},
    "data": {"eval_fraction": 0.02},
    "train": {"epochs": 0.1, "threads": 1},
    "latency": {"repeats": 3},
    "strategy": {"expand": [], "checkpoints": 1, "prune": False, "fidelity": None},
    "budget": {"trials": BUDGET},
}


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


def worker(space: Path, storage: str, study: str, out: Path, cache: Path, *extra: str):
    return [
        sys.executable, "-m", "autotune", "--space", str(space), "--target", "cpu",
        "--storage", storage, "--study", study, "--out", str(out), "--cache", str(cache), *extra,
    ]  # fmt: skip


def start(argv: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)


def finish(procs: list[subprocess.Popen], logs: list[Path], timeout: float = 600) -> None:
    """Wait for every worker; each must exit 0 without SQLite or journal lock errors."""
    for proc, log in zip(procs, logs, strict=True):
        proc.wait(timeout)
        text = log.read_text()
        assert proc.returncode == 0, f"{log.name}: exit {proc.returncode}\n{text[-3000:]}"
        assert "locked" not in text.lower(), text[-3000:]


def load(storage: str, study: str) -> list[optuna.trial.FrozenTrial]:
    if storage.startswith("journal:"):
        backend = optuna.storages.journal.JournalFileBackend(storage.removeprefix("journal:"))
        storage = optuna.storages.JournalStorage(backend)
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def reported_complete(out: Path) -> int:
    """The completed trials in a run folder's trials table."""
    table = pd.read_csv(out / "trials.csv")
    assert (out / "report.md").is_file()
    return int((table["state"] == "COMPLETE").sum())


def assert_budget_met_once(trials: list[optuna.trial.FrozenTrial]) -> None:
    """Exactly the budget of completed trials, and no configuration trained twice (a training
    a killed worker left unfinished aside)."""
    complete = [t for t in trials if t.state == State.COMPLETE]
    assert len(complete) == BUDGET
    trained = Counter(
        t.user_attrs[Attr.ADAPTER_KEY]
        for t in trials
        if t.user_attrs.get(Attr.TRAINED_HERE) and t.state in (State.COMPLETE, State.PRUNED)
    )
    assert trained and max(trained.values()) == 1, trained
    for trial in trials:  # a trial yielded to the budget never trained
        if trial.user_attrs.get("pruned") == SURPLUS:
            assert Attr.TRAINED_HERE not in trial.user_attrs


# Four workers on two cores: the most contention for the budget (two workers share a study in
# the kill test and the journal tests too).
@pytest.mark.parametrize("count", [4])
def test_workers_on_one_postgres_study_complete_exactly_the_budget(
    count, postgres_url, write_space, tmp_path
):
    space, cache, study = write_space(FAST), tmp_path / "cache", f"workers-{count}"
    logs = [tmp_path / f"worker{i}.log" for i in range(count)]
    procs = [
        start(worker(space, postgres_url, study, tmp_path / f"run{i}", cache), log)
        for i, log in enumerate(logs)
    ]
    finish(procs, logs)
    trials = load(postgres_url, study)
    assert_budget_met_once(trials)
    ran = {t.user_attrs[Attr.WORKER] for t in trials if t.state == State.COMPLETE}
    assert len(ran) >= 2, f"one worker ran every trial: {ran}"
    # Every worker's report is the whole study's.
    for i in range(count):
        assert reported_complete(tmp_path / f"run{i}") == BUDGET


def test_workers_rank_their_rungs_in_the_shared_postgres_study(postgres_url, write_space, tmp_path):
    """Successive halving across two workers: a training is ranked at its rung among the
    configurations both workers brought there, read from the shared storage."""
    strategy = {**FAST["strategy"], "fidelity": {"rungs": 2, "eta": 2}}
    space = write_space({**FAST, "strategy": strategy, "budget": {"trials": 6}})
    cache, study = tmp_path / "cache", "workers-rungs"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs = [
        start(worker(space, postgres_url, study, tmp_path / f"run{i}", cache), log)
        for i, log in enumerate(logs)
    ]
    finish(procs, logs)
    trials = load(postgres_url, study)
    assert sum(t.state == State.COMPLETE for t in trials) == 6
    for trial in trials:
        rung = trial.user_attrs.get(Attr.RUNG) or {}
        if trial.state == State.COMPLETE:
            assert rung["reached"] == rung["of"] == 2 and not rung["stopped"]
    paused = [
        t
        for t in trials
        if t.state == State.PRUNED and (t.user_attrs.get(Attr.RUNG) or {}).get("stopped")
    ]
    assert paused, "no training was stopped at its first rung"
    ranked_with_the_other = 0
    for trial in paused:
        # "ranks R of N there": N counts every configuration at the rung. A worker runs its
        # trials one after the other, so an N above the configurations this worker brought
        # there before counts the other worker's, read from the shared storage.
        ranked = int(re.search(r"ranks \d+ of (\d+)", trial.user_attrs[Attr.RUNG]["stopped"])[1])
        own = {
            t.user_attrs[Attr.ADAPTER_KEY]
            for t in trials
            if t.number <= trial.number
            and t.user_attrs.get(Attr.WORKER) == trial.user_attrs[Attr.WORKER]
            and Attr.RUNG in t.user_attrs
        }
        ranked_with_the_other += ranked > len(own)
    assert ranked_with_the_other, "no stopped training was ranked with the other worker's"


def wait_for_running_trial(
    storage: str, study: str, proc: subprocess.Popen, log: Path
) -> optuna.trial.FrozenTrial:
    """A trial the worker `proc` is running, once its training started."""
    deadline, pid = time.monotonic() + 300, proc.pid
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"worker {pid} ended first:\n{log.read_text()[-3000:]}"
        try:
            trials = load(storage, study)
        except (KeyError, ValueError):  # the study is not created yet
            trials = []
        for trial in trials:
            mine = trial.user_attrs.get(Attr.WORKER, "").split(":")[1:2] == [str(pid)]
            if mine and trial.state == State.RUNNING and Attr.ADAPTER_KEY in trial.user_attrs:
                return trial
        time.sleep(0.2)
    raise AssertionError(f"worker {pid} ran no trial within 300 s")


@pytest.mark.parametrize("kind", ["postgres", "journal"])
def test_a_killed_workers_trial_fails_and_runs_again(kind, request, write_space, tmp_path):
    """kill -9 of one of two workers mid-trial: the other ends the budget, and the dead worker's
    trial is failed (heartbeats on PostgreSQL, a process check on a journal) and run again."""
    if kind == "postgres":
        storage = request.getfixturevalue("postgres_url")
    else:
        storage = f"journal:{tmp_path / 'study.journal'}"
    space, cache, study = write_space(FAST), tmp_path / "cache", f"kill-{kind}"
    logs = [tmp_path / "survivor.log", tmp_path / "victim.log"]
    argv = [
        worker(space, storage, study, tmp_path / f"run{i}", cache, "--heartbeat", "1")
        for i in (0, 1)
    ]
    survivor = start(argv[0], logs[0])
    victim = start(argv[1], logs[1])
    try:
        killed = wait_for_running_trial(storage, study, victim, logs[1])
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    finish([survivor], logs[:1])

    trials = {t.number: t for t in load(storage, study)}
    assert_budget_met_once(list(trials.values()))
    assert trials[killed.number].state == State.FAIL
    retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == killed.number]
    assert [(t.state, t.params) for t in retries] == [(State.COMPLETE, killed.params)]
    report = (tmp_path / "run0" / "trials.csv").read_text()
    assert "interrupted: the worker running this trial" in report


def test_local_workers_share_a_journal_study(write_space, tmp_path):
    space, out = write_space(FAST), tmp_path / "run"
    storage = f"journal:{tmp_path / 'study.journal'}"
    argv = [
        sys.executable, "-m", "autotune", "--space", str(space), "--target", "cpu",
        "--out", str(out), "--storage", storage, "--workers", "2",
    ]  # fmt: skip
    log = tmp_path / "workers.log"
    finish([start(argv, log)], [log])
    trials = load(storage, "tiny")
    assert_budget_met_once(trials)
    workers = {t.user_attrs[Attr.WORKER] for t in trials if t.state == State.COMPLETE}
    assert len(workers) == 2, workers
    assert reported_complete(out) == BUDGET  # the report, written once all workers ended

    # The whole study's report, from the storage alone (as from another machine).
    elsewhere = tmp_path / "elsewhere"
    report = subprocess.run(
        [sys.executable, "-m", "autotune", "report", "--storage", storage, "--out", str(elsewhere)],
        capture_output=True,
        text=True,
    )
    assert report.returncode == 0, report.stderr[-2000:]
    assert reported_complete(elsewhere) == BUDGET and (elsewhere / "report.html").is_file()


def test_a_worker_with_another_space_file_is_refused(write_space, tmp_path):
    storage = f"journal:{tmp_path / 'study.journal'}"
    first = write_space(FAST, name="first.yaml")
    other = write_space({**FAST, "train": {"epochs": 0.2, "threads": 1}}, name="other.yaml")
    base = ["--trials", "1", "--quiet"]
    ok = subprocess.run(
        worker(first, storage, "s", tmp_path / "a", tmp_path / "cache", *base),
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    refused = subprocess.run(
        worker(other, storage, "s", tmp_path / "b", tmp_path / "cache", *base),
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "different space file" in refused.stderr and "Traceback" not in refused.stderr
    assert str(other) in refused.stderr


def test_a_worker_joining_while_the_study_is_being_made_sees_its_whole_identity(write_space):
    """The first worker writes the study's identity in one attribute before the rest: a second
    one that reads the study in between joins it, or is refused for another target, and never
    mistakes a half-written identity for another space's."""
    from autotune.search.study import StudyMismatch, open_study, space_hash
    from autotune.spaces import load_space

    space = load_space(write_space(FAST), "cpu")
    storage = optuna.storages.InMemoryStorage()
    made = optuna.create_study(storage=storage, study_name="s", directions=["maximize", "minimize"])
    made.set_user_attr("identity", {"space_hash": space_hash(space), "target": "cpu"})
    made.set_user_attr("space_hash", space_hash(space))  # ... and not yet "target"
    assert open_study(space, "cpu", storage, seed=0, study_name="s").study_name == "s"
    with pytest.raises(StudyMismatch):
        open_study(space, "cuda", storage, seed=0, study_name="s")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--workers", "2"], "needs a storage the workers share"),
        (["--storage", "redis://host"], "expected sqlite:///PATH, postgresql://"),
        (["--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot open the storage"),
    ],
)
def test_bad_storage_flags_are_one_line_errors(flags, message, write_space, tmp_path):
    argv = [sys.executable, "-m", "autotune", "--space", str(write_space(FAST))]
    result = subprocess.run(
        [*argv, "--out", str(tmp_path / "run"), *flags], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_local_workers_get_disjoint_cores():
    shares = [Placement(i, 2).cpu_cores([0, 1, 2, 3]) for i in range(2)]
    assert shares == [[0, 1], [2, 3]]
    assert [Placement(i, 3).cpu_cores([0, 1]) for i in range(3)] == [[0], [1], [0]]


def test_report_of_a_missing_journal_is_one_line_and_creates_nothing(tmp_path):
    journal = tmp_path / "missing.journal"
    argv = [sys.executable, "-m", "autotune", "report", "--storage", f"journal:{journal}"]
    result = subprocess.run([*argv, "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert result.returncode == 2 and "no such journal file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not journal.exists()
