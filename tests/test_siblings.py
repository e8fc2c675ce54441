"""Precision siblings: which export settings they take, and that their training is never judged
again."""

from __future__ import annotations

import optuna

from autotune.search.params import suggest
from autotune.search.record import Attr
from autotune.search.siblings import enqueue_siblings, sibling_params
from autotune.search.stages import training_verdict
from autotune.spaces import load_space

State = optuna.trial.TrialState
BOTH = {"choices": [True, False]}
TRIAL = {"lora_r": 16, "learning_rate": 0.0015, "precision": "fp32"}


def exports(siblings: list[dict], *knobs: str) -> list[tuple]:
    return sorted(tuple(s.get(k) for k in ("precision", *knobs)) for s in siblings)


def test_siblings_take_each_value_of_the_searched_embedding_and_head_knobs(write_space):
    search = {
        "precision": {"choices": ["fp32", "int8"]},
        "int4_block_size": None,
        "int4_accuracy_level": None,
        "shared_embeddings": BOTH,
        "prune_lm_head": BOTH,
    }
    space = load_space(write_space({"search": search}), "cpu")
    trial = {**TRIAL, "shared_embeddings": True, "prune_lm_head": False}
    siblings = sibling_params(space, trial)
    assert exports(siblings, "shared_embeddings", "prune_lm_head") == [
        ("fp32", False, False),
        ("fp32", False, True),
        ("fp32", True, True),
        ("int8", False, False),
        ("int8", False, True),
        ("int8", True, False),
        ("int8", True, True),
    ]
    for sibling in siblings:  # the training parameters are the trial's own
        assert sibling["lora_r"] == 16 and sibling["learning_rate"] == 0.0015


def test_int4_options_multiply_only_the_int4_siblings_of_an_unshared_embedding(write_space):
    search = {"shared_embeddings": BOTH}  # and the tiny space's precisions and int4 options
    space = load_space(write_space({"search": search}), "cpu")
    siblings = sibling_params(space, {**TRIAL, "shared_embeddings": False})
    knobs = ("shared_embeddings", "int4_block_size", "int4_accuracy_level")
    int4 = [s for s in exports(siblings, *knobs) if s[0] == "int4"]
    assert len(int4) == 2 * 2 * 2 and {s[1] for s in int4} == {True, False}
    assert exports([s for s in siblings if s["precision"] != "int4"], *knobs) == [
        ("fp32", True, None, None),
        ("int8", False, None, None),
        ("int8", True, None, None),
    ]


def test_a_knob_left_out_of_expand_keeps_the_trials_value(write_space):
    changes = {"search": {"prune_lm_head": BOTH}, "strategy": {"expand": ["precision"]}}
    space = load_space(write_space(changes), "cpu")
    siblings = sibling_params(space, {**TRIAL, "prune_lm_head": True})
    assert exports(siblings, "prune_lm_head") == [("int4", True), ("int8", True)]


def test_the_queued_siblings_cover_both_embedding_settings(write_space):
    space = load_space(write_space({"search": {"shared_embeddings": BOTH}}), "cpu")
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial({**TRIAL, "shared_embeddings": True})
    trained = study.ask()
    suggest(trained, space)
    queued = enqueue_siblings(study, space, trained)
    waiting = study.get_trials(states=(State.WAITING,))
    assert queued == len(waiting) == 2 * (1 + 1 + 2 * 2) - 1
    assert {t.system_attrs["fixed_params"]["shared_embeddings"] for t in waiting} == {True, False}
    assert all(t.user_attrs[Attr.SIBLING_OF] == trained.number for t in waiting)


def paused_then_promoted(study: optuna.Study, key: str) -> None:
    """A configuration paused at its first rung, and its promotion still running (in another
    worker, say): its training has finished, its trial is exporting."""
    rung = {"reached": 1, "of": 3, "losses": [0.9], "stopped": "paused at rung 1 of 3"}
    paused = optuna.trial.create_trial(
        state=State.PRUNED,
        user_attrs={Attr.ADAPTER_KEY: key, Attr.RUNG: rung, Attr.PRUNED: rung["stopped"]},
    )
    study.add_trial(paused)
    promoted = study.ask()
    promoted.set_user_attr(Attr.PROMOTED_FROM, paused.number)
    promoted.set_user_attr(Attr.ADAPTER_KEY, key)
    promoted.set_user_attr(Attr.RUNG, {**rung, "reached": 3, "losses": [0.9, 0.8, 0.7]})


def test_a_siblings_training_is_settled_while_the_trial_that_trained_it_runs():
    study = optuna.create_study(directions=["maximize", "minimize"])
    paused_then_promoted(study, "k")
    sibling, proposed = study.ask(), study.ask()
    sibling.set_user_attr(Attr.SIBLING_OF, 1)
    assert training_verdict(sibling, "k", judging=True) == "complete"
    # A configuration the sampler proposed again is judged as before: paused like the first.
    assert training_verdict(proposed, "k", judging=True).startswith("as trial 0: paused")
    assert training_verdict(proposed, "k", judging=False) is None
