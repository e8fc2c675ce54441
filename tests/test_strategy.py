"""How a study spends its budget: siblings, samplers, pruning, resume bookkeeping, run locks."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from autotune.candidates.train import checkpoint_steps
from autotune.search.pruning import MedianRule, earlier_verdict
from autotune.search.record import Attr
from autotune.search.samplers import grid_values, make_sampler, sampler_seed, startup_trials
from autotune.search.siblings import sibling_params
from autotune.search.workers.recovery import (
    INTERRUPTED,
    RunFolderBusy,
    RunLock,
    requeue_interrupted,
)
from autotune.spaces import SpaceError, load_space

INT4_TRIAL = {
    "lora_r": 16,
    "learning_rate": 0.0015,
    "precision": "int4",
    "int4_block_size": 32,
    "int4_accuracy_level": 1,
}


def exports(siblings: list[dict]) -> list[tuple]:
    return sorted(
        (s["precision"], s.get("int4_block_size"), s.get("int4_accuracy_level")) for s in siblings
    )


def test_siblings_cover_every_other_export_setting(write_space):
    space = load_space(write_space(), "cpu")
    siblings = sibling_params(space, INT4_TRIAL)
    assert exports(siblings) == [
        ("fp32", None, None),
        ("int4", 32, 4),
        ("int4", 128, 1),
        ("int4", 128, 4),
        ("int8", None, None),
    ]
    for sibling in siblings:  # the training parameters are the trial's own
        assert sibling["lora_r"] == 16 and sibling["learning_rate"] == 0.0015


def test_siblings_expand_only_the_named_knobs(write_space):
    space = load_space(write_space({"strategy": {"expand": ["precision"]}}), "cpu")
    assert exports(sibling_params(space, INT4_TRIAL)) == [
        ("fp32", None, None),
        ("int8", None, None),
    ]
    fp32 = {"lora_r": 8, "learning_rate": 0.001, "precision": "fp32"}
    # The int4 sibling of an fp32 trial leaves its int4 options to the sampler.
    assert exports(sibling_params(space, fp32)) == [("int4", None, None), ("int8", None, None)]
    none = load_space(write_space({"strategy": {"expand": []}}), "cpu")
    assert sibling_params(none, INT4_TRIAL) == []


def test_int4_options_multiply_only_the_int4_siblings(write_space):
    search = {
        "precision": {"choices": ["fp16", "bf16", "int4"]},
        "int4_block_size": {"choices": [32, 128]},
        "int4_accuracy_level": None,
        "int4_algo": {"choices": ["default", "k_quant_last"]},
    }
    space = load_space(write_space({"search": search}), "cuda")
    fp16 = {"lora_r": 8, "learning_rate": 0.001, "precision": "fp16"}
    siblings = sibling_params(space, fp16)
    assert sorted(
        (s["precision"], s.get("int4_block_size"), s.get("int4_algo")) for s in siblings
    ) == [
        ("bf16", None, None),
        ("int4", 32, "default"),
        ("int4", 32, "k_quant_last"),
        ("int4", 128, "default"),
        ("int4", 128, "k_quant_last"),
    ]


def test_train_knobs_searched_or_fixed_reach_the_training(write_space):
    from autotune.search.params import export_params, suggest, train_params

    changes = {
        "train": {"batch_size": None, "gradient_checkpointing": True, "dtype": "bf16"},
        "search": {
            "method": {"choices": ["qlora"]},
            "batch_size": {"choices": [4]},
            "precision": {"choices": ["fp32"]},
            "int4_algo": {"choices": ["k_quant"]},
        },
    }
    space = load_space(write_space(changes), "cpu")
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    values = suggest(trial, space)
    assert "int4_algo" not in trial.params  # suggested only for int4 trials
    training = train_params(values, space)
    assert (training.method, training.batch_size, training.gradient_checkpointing) == (
        "qlora",
        4,
        True,
    )
    assert (training.dtype, training.quant_type, training.double_quant) == ("bf16", "nf4", True)
    assert export_params(values, "cpu").int4_algo is None
    lora = load_space(write_space({"train": {"method": "lora"}}), "cpu")
    other = optuna.create_study(directions=["maximize", "minimize"])
    training = train_params(suggest(other.ask(), lora), lora)
    assert training.method == "lora" and training.quant_type is None
    assert training.batch_size == 8 and training.dtype == "fp32"  # the tiny space pins fp32


def test_int4_algo_reaches_the_builder_options(write_space):
    from autotune.candidates.export import ExportParams
    from autotune.search.params import export_params

    values = {"precision": "int4", "int4_block_size": 64, "int4_accuracy_level": None}
    options = export_params({**values, "int4_algo": "k_quant_last"}, "cuda").extra_options()
    assert options == ["block_size=64", "algo_config=k_quant_last"]
    assert ExportParams("fp16", "cuda", int4_algo="rtn").extra_options() == []


def test_strategy_section_is_validated(write_space):
    with pytest.raises(SpaceError) as caught:
        load_space(write_space({"strategy": {"expand": ["lora_r"]}}), "cpu")
    assert caught.value.field == "strategy.expand" and "export knobs" in caught.value.message
    with pytest.raises(SpaceError, match="tpe"):
        load_space(write_space({"strategy": {"sampler": "bayes"}}), "cpu")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("gp", optuna.samplers.GPSampler),
        ("random", optuna.samplers.RandomSampler),
    ],
)
def test_samplers_by_name(write_space, name, kind):
    space = load_space(write_space(), "cpu")
    assert isinstance(make_sampler(name, 0, space), kind)


def test_grid_needs_finite_values(write_space):
    search = {
        "learning_rate": {"choices": [0.001, 0.002], "low": None, "high": None, "log": None},
        "lora_r": {"choices": None, "low": 8, "high": 24, "step": 8},
    }
    space = load_space(write_space({"search": search}), "cpu")
    grid = grid_values(space)
    assert grid["lora_r"] == [8, 16, 24] and grid["learning_rate"] == [0.001, 0.002]
    assert isinstance(make_sampler("grid", 0, space), optuna.samplers.GridSampler)
    # The tiny space's learning rate is a log range: no grid, and the CLI says which knob.
    done = subprocess.run(
        [sys.executable, "-m", "autotune", "--space", str(write_space()), "--sampler", "grid"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "search.learning_rate" in done.stderr and "grid" in done.stderr


def test_a_continued_study_draws_new_random_numbers():
    assert sampler_seed(7, 0) == 7
    assert sampler_seed(7, 12) != 7 and sampler_seed(7, 12) == sampler_seed(7, 12)
    assert sampler_seed(7, 12) != sampler_seed(7, 13)


def test_checkpoint_steps_are_evenly_spaced_before_the_end():
    assert checkpoint_steps(100, 3) == [25, 50, 75]
    assert checkpoint_steps(2, 3) == [1]  # too few steps for three distinct checkpoints
    assert checkpoint_steps(100, 0) == []


def completed_training(study: optuna.Study, adapter: str, losses: list[float]) -> None:
    trial = study.ask()
    trial.set_user_attr(Attr.ADAPTER_KEY, adapter)
    trial.set_user_attr(Attr.CHECKPOINT_LOSSES, losses)
    study.tell(trial, [0.5, 1.0])


def test_median_rule_prunes_worse_than_median_trainings():
    study = optuna.create_study(directions=["maximize", "minimize"])

    def rule(adapter: str = "new", prune_from: int = 1) -> MedianRule:
        return MedianRule(study.ask(), adapter, checkpoints=2, prune_after=3, prune_from=prune_from)

    completed_training(study, "a", [1.0, 0.8])
    completed_training(study, "b", [2.0, 1.6])
    rule()(0, 9.0)  # two earlier trainings: too few to judge
    completed_training(study, "b", [2.0, 1.6])  # a sibling: the same adapter counts once
    rule()(0, 9.0)
    completed_training(study, "c", [3.0, 2.4])
    rule()(0, 2.0)  # the median of 1, 2, 3: not worse
    rule(prune_from=2)(0, 9.0)  # the first checkpoint is not judged
    judged = rule()
    with pytest.raises(optuna.TrialPruned, match=r"checkpoint 2 of 2 .* median 1.6000 of 3"):
        judged(1, 1.7)
    assert judged.trial.user_attrs[Attr.CHECKPOINT_LOSSES] == [1.7]  # kept for a later verdict
    # A training is not judged against its own earlier completion (it would raise the median).
    rule("c")(1, 1.7)


def test_a_configuration_keeps_its_verdict():
    study = optuna.create_study(directions=["maximize", "minimize"])
    assert earlier_verdict(study, "a") is None
    completed_training(study, "a", [1.0])
    assert earlier_verdict(study, "a") == "complete"
    pruned = study.ask()
    pruned.set_user_attr(Attr.ADAPTER_KEY, "b")
    pruned.set_user_attr(Attr.PRUNED, "eval loss 2.0 at checkpoint 2 of 3 is worse")
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    assert (
        earlier_verdict(study, "b")
        == f"as trial {pruned.number}: eval loss 2.0 at checkpoint 2 of 3 is worse"
    )


def test_tpe_starts_with_whole_trainings(write_space):
    tiny = load_space(write_space(), "cpu")  # 6 export settings, 24 trials: 4 trainings
    assert startup_trials(tiny) == 2 * 6
    plain = load_space(write_space({"strategy": {"expand": []}, "budget": {"trials": 30}}), "cpu")
    assert startup_trials(plain) == 5  # 30 trainings: a fifth


def test_interrupted_trials_fail_and_run_again(tmp_path):
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'study.db'}", directions=["maximize", "minimize"]
    )
    done = study.ask()
    done.suggest_int("lora_r", 8, 64)
    study.tell(done, [0.5, 1.0])
    killed = study.ask()  # left RUNNING, as by a process killed mid-trial
    rank = killed.suggest_int("lora_r", 8, 64)
    assert requeue_interrupted(study, max_retries=2) == [killed.number]
    trials = study.get_trials()
    assert trials[killed.number].state == optuna.trial.TrialState.FAIL
    assert trials[killed.number].user_attrs["error"] == INTERRUPTED
    again = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in again] == [{"lora_r": rank}]
    assert again[0].user_attrs["retry_of"] == killed.number
    assert trials[done.number].state == optuna.trial.TrialState.COMPLETE


def test_one_process_per_run_folder(tmp_path):
    held = RunLock(tmp_path).acquire()
    with pytest.raises(RunFolderBusy, match=str(tmp_path)):
        RunLock(tmp_path).acquire()
    assert held.path.read_text().strip().isdigit()
