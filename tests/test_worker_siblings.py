"""Precision siblings across workers: a sibling reuses its training, never ranks at a rung.

A configuration paused at its first rung and promoted later trains on in one worker and queues
its siblings once its training finished; another worker may take them up while the promoted trial
still exports and measures, so no completed trial vouches for the training yet. Ranked at the
first rung like a new configuration, such a sibling would be paused there (and each pause would
start another promotion).
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from autotune.decisions.record import Rung, Verdict
from autotune.search.events import StudyEvents
from autotune.search.params import suggest, train_params
from autotune.search.record import Attr
from autotune.search.run import prepare_run
from autotune.search.stages import adapter_key, make_adapter
from autotune.spaces import load_space
from tests.test_workers import finish, load, start, worker

pytestmark = pytest.mark.slow

State = optuna.trial.TrialState
TINY = Path(__file__).resolve().parents[1] / "spaces" / "tiny.yaml"
TRIALS = 6
# A short training (three rungs of a few steps) on an unpretrained tiny base: one configuration
# and its two precisions.
SHORT = {
    "model": {"tiny": {"pretrain_epochs": 0}},
    "data": {"eval_fraction": 0.02},
    "train": {"epochs": 0.1, "threads": 1},
    "search": {
        "lora_r": 8,
        "learning_rate": 2.0e-3,
        "precision": {"choices": ["int8", "fp32"]},
        "int4_block_size": None,
        "int4_accuracy_level": None,
    },
}


def assert_no_sibling_paused(trials: list[optuna.trial.FrozenTrial]) -> None:
    siblings = [t for t in trials if t.user_attrs.get(Attr.SIBLING_OF) is not None]
    assert any(t.state != State.WAITING for t in siblings), "no sibling ran"
    for sibling in siblings:
        stopped = (sibling.user_attrs.get(Attr.RUNG) or {}).get("stopped")
        pruned = sibling.user_attrs.get(Attr.PRUNED) or ""
        assert not stopped and "paused at rung" not in pruned, (sibling.number, stopped or pruned)
        assert sibling.user_attrs.get(Attr.VERDICT) != Verdict.PAUSED


def paused(key: str, losses: tuple[float, ...]) -> optuna.trial.FrozenTrial:
    """A trial of configuration `key` paused at its last rung reached, with these eval losses."""
    reason = f"paused at rung {len(losses)} of 3"
    rung = Rung(reached=len(losses), of=3, losses=losses, stopped=reason)
    attrs = {Attr.ADAPTER_KEY: key, Attr.RUNG: rung.to_json(), Attr.VERDICT: Verdict.PAUSED}
    return optuna.trial.create_trial(state=State.PRUNED, user_attrs={**attrs, Attr.PRUNED: reason})


def test_a_sibling_taken_up_while_its_promoted_training_still_runs_is_not_judged(
    write_space, shared_cache, tmp_path
):
    """The interleaving two workers may produce, made certain in one process: the promoted trial
    finished its training and still runs (as if exporting in another worker) when its sibling
    starts. Its configuration ranks last at the first rung, where three others did far better
    (and lost at the second): the promotion took it past that rung, and so must its sibling."""
    space = load_space(write_space(SHORT), "cpu")
    run = prepare_run(space, "cpu", tmp_path / "run", shared_cache, StudyEvents())
    study = optuna.create_study(directions=["maximize", "minimize"])
    training = train_params(suggest(study.ask(), space), space)  # every training knob is fixed
    key = adapter_key(run.base.key, run.train_identity, training, run.versions)
    for other in "abc":
        study.add_trial(paused(other, (0.01, 50.0)))
    study.add_trial(paused(key, (50.0,)))
    first = study.trials[-1].number

    study.enqueue_trial({"precision": "int8"}, user_attrs={Attr.PROMOTED_FROM: first})
    promoted = study.ask()
    _, trained = make_adapter(run, training, promoted)
    assert promoted.user_attrs[Attr.RUNG]["reached"] == 3  # and it stays RUNNING

    study.enqueue_trial({"precision": "fp32"}, user_attrs={Attr.SIBLING_OF: promoted.number})
    sibling = study.ask()
    _, reused = make_adapter(run, train_params(suggest(sibling, space), space), sibling)
    assert reused == trained
    assert_no_sibling_paused(study.get_trials())
    assert sibling.user_attrs[Attr.RUNG]["reached"] == 3


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
    assert_no_sibling_paused(trials)
