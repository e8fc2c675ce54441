"""No wasted rungs: a space counts its distinct configurations, a budget above them is cut to
them, and a study of a one-configuration space runs each configuration once, straight."""

from __future__ import annotations

import math

import optuna
import pytest

from autotune.cli import main
from autotune.decisions.budget import distinct_configurations, every_configuration, plan_for
from autotune.decisions.rungs import ranks_anything
from autotune.search.budget import all_run, leaders, planned, queue_every_configuration
from autotune.search.record import Attr, reference_record
from autotune.search.siblings import sibling_params
from autotune.search.study import space_hash
from autotune.spaces import load_space
from autotune.spaces.strategy import FidelitySection

ONE_TRAINING = {"lora_r": 16, "learning_rate": 0.002}  # the tiny space's search, both fixed
FAST = {  # a tiny study in well under a minute
    "model": {"tiny": {"pretrain_epochs": 0}},
    "data": {"eval_fraction": 0.02},
    "train": {"epochs": 0.2, "threads": 1},
    "latency": {"repeats": 3},
    "strategy": {"confirm": False},
}


def space_with(write_space, search: dict, **changes):
    return load_space(write_space({"search": search, **changes}), "cpu")


def test_the_tiny_space_counts_its_exports_and_a_continuous_range_as_endless(write_space):
    found = distinct_configurations(load_space(write_space(), "cpu"))
    # fp32, int8, and int4 at 2 block sizes x 2 accuracy levels
    assert found.exports == 6 and found.trainings == math.inf and found.candidates == math.inf


def test_choices_steps_and_integer_ranges_count_their_values(write_space):
    search = {
        "lora_r": {"low": 8, "high": 32, "step": 8, "choices": None},  # 8, 16, 24, 32
        # a repeated choice counts once (None: the tiny space's range keys go)
        "learning_rate": {"choices": [0.001, 0.002, 0.001], "low": None, "high": None, "log": None},
        "lora_dropout": {"low": 0.0, "high": 0.1, "step": 0.05},  # 0, 0.05, 0.1
        "precision": {"choices": ["fp32", "int8"]},  # the int4 knobs count for int4 only
    }
    space = space_with(write_space, search)
    found = distinct_configurations(space)
    assert (found.trainings, found.exports) == (4 * 2 * 3, 2)
    every = every_configuration(space)
    assert len(every) == found.candidates == 48
    assert len({tuple(sorted(c.items())) for c in every}) == 48  # all distinct
    assert "int4_block_size" not in every[0]


def test_a_budget_above_the_configurations_is_cut_with_a_line(write_space):
    space = space_with(write_space, ONE_TRAINING)
    plan = plan_for(space)
    assert plan.trials == 6 and plan.exhaustive and not plan.halving
    assert plan.notes == (
        "the budget is cut from 24 to 6 completed trials: the space holds 6 distinct "
        "configurations (1 training x 6 export settings), each run once",
        "successive halving off: every configuration runs; each training runs straight to its end",
    )
    ran, _ = planned(space)
    assert ran.budget.trials == 6 and ran.strategy.fidelity is None and not ran.strategy.prune
    assert space_hash(ran) == space_hash(space)  # the same study


def test_a_budget_below_the_configurations_stands(write_space):
    space = load_space(write_space(), "cpu")
    plan = plan_for(space)
    assert plan == plan_for(space) and plan.trials == 24 and plan.notes == ()
    assert plan.halving and not plan.exhaustive
    assert planned(space)[0].strategy.fidelity == space.strategy.fidelity


def test_halving_goes_off_where_its_first_rung_ranks_nothing(write_space):
    fidelity = FidelitySection(screen=3)
    assert not ranks_anything(1, fidelity) and not ranks_anything(2, fidelity)
    assert ranks_anything(3, fidelity) and ranks_anything(math.inf, fidelity)
    assert not ranks_anything(1, FidelitySection(screen=1))  # one configuration ranks first
    # two trainings x 6 exports: 12 configurations, above a budget of 8
    search = {"lora_r": {"choices": [8, 16]}, "learning_rate": 0.002}
    plan = plan_for(space_with(write_space, search, budget={"trials": 8}))
    assert plan.trials == 8 and not plan.exhaustive and not plan.halving
    assert plan.notes == (
        "successive halving off: 2 training configurations, fewer than the 3 its first rung "
        "ranks; each training runs straight to its end",
    )


def test_the_median_rule_goes_off_where_it_could_stop_nothing(write_space):
    search = {"lora_r": {"choices": [8, 16, 32]}, "learning_rate": 0.002}
    strategy = {"fidelity": None, "prune": True, "prune_after": 3}
    plan = plan_for(space_with(write_space, search, strategy=strategy, budget={"trials": 8}))
    assert not plan.median and plan.notes == (
        "median rule off: 3 training configurations, no more than the 3 completed ones it "
        "waits for",
    )


def test_an_exhaustive_study_queues_each_training_once_and_ends_with_its_queue(write_space):
    search = {"lora_r": {"choices": [8, 16]}, "learning_rate": 0.002}
    space = planned(space_with(write_space, search))[0]
    firsts = leaders(space)
    assert firsts == [{"lora_r": 8, "precision": "fp32"}, {"lora_r": 16, "precision": "fp32"}]
    covered = [c for leader in firsts for c in [leader, *sibling_params(space, leader)]]
    assert sorted(map(str, covered)) == sorted(map(str, every_configuration(space)))

    study = optuna.create_study(directions=["maximize", "minimize"])
    assert queue_every_configuration(study, space) == 2
    assert queue_every_configuration(study, space) == 0  # never twice
    assert not all_run(study, space)
    for _ in firsts:  # the leaders run (their siblings would be queued as they train)
        trial = study.ask()
        study.tell(trial, [0.5, 1.0])
    assert all_run(study, space)  # nothing queued, every training taken: no sampler, no repeat


def test_dry_run_says_the_budget_was_cut(write_space, capsys, tmp_path):
    # a hub model not in the local cache: the dry run skips the model checks (fast)
    changes = {"model": {"tiny": None, "path": "nobody/not-in-the-cache"}, "search": ONE_TRAINING}
    argv = ["--space", str(write_space(changes)), "--target", "cpu", "--dry-run"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "budget: 6 completed trials, every configuration queued once" in out
    assert "the budget is cut from 24 to 6 completed trials" in out
    assert "no early stopping" in out


@pytest.mark.slow
def test_a_one_configuration_space_runs_one_trial(write_space, tmp_path, shared_cache):
    """One training at one precision: one trial, trained straight (no rung, no pause), exit 0;
    a second study on the same cache (another run folder) reuses the base's measurement."""
    from autotune.candidates.cache import list_entries

    search = {**ONE_TRAINING, "precision": "fp32", "int4_block_size": None}
    space = write_space({**FAST, "search": {**search, "int4_accuracy_level": None}})
    cache = tmp_path / "cache"
    runs = []
    for name in ("first", "second"):
        out = tmp_path / name
        argv = ["--space", str(space), "--target", "cpu", "--out", str(out), "--quiet"]
        assert main([*argv, "--cache", str(cache)]) == 0
        study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
        runs.append((study, {(e.stage, e.key) for e in list_entries(cache)}))
    (first, entries), (second, entries_after) = runs
    trials = first.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE]
    assert Attr.RUNG not in trials[0].user_attrs  # trained straight
    assert not any(stage == "rung" for stage, _ in entries)
    assert entries_after == entries  # the second study built nothing: base and trial reused
    base = reference_record(second)
    assert base is not None and base.metrics == reference_record(first).metrics
    assert base.measured["eval_examples"] <= 64  # gain_over_base is not judged
