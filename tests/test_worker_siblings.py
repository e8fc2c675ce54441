"""Precision siblings across workers: a sibling reuses its training, never ranks at a rung.

Two workers share a journal study of the tiny space and its successive halving. A configuration
paused at its first rung and promoted later trains on in one worker and queues its siblings once
its training finished; the other worker may take them up while the promoted trial still exports
and measures. They reuse the finished training: ranked at the first rung like a new
configuration they would be paused there, and each pause would start another promotion.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autotune.search.record import Attr
from tests.test_workers import finish, load, start, worker

pytestmark = pytest.mark.slow

State = optuna.trial.TrialState
TINY = Path(__file__).resolve().parents[1] / "spaces" / "tiny.yaml"
TRIALS = 6


def test_two_workers_never_pause_a_sibling_at_a_rung(tmp_path):
    storage, cache = f"journal:{tmp_path / 'study.journal'}", tmp_path / "cache"
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    argv = [
        worker(TINY, storage, "S", tmp_path / f"run{i}", cache, "--trials", str(TRIALS))
        for i in range(2)
    ]
    finish([start(args, log) for args, log in zip(argv, logs, strict=True)], logs, timeout=3600)

    trials = load(storage, "S")
    assert sum(t.state == State.COMPLETE for t in trials) == TRIALS
    siblings = [t for t in trials if t.user_attrs.get(Attr.SIBLING_OF) is not None]
    assert any(t.state != State.WAITING for t in siblings), "no sibling ran"
    for sibling in siblings:
        stopped = (sibling.user_attrs.get(Attr.RUNG) or {}).get("stopped")
        pruned = sibling.user_attrs.get(Attr.PRUNED) or ""
        assert not stopped and "paused at rung" not in pruned, (sibling.number, stopped or pruned)
