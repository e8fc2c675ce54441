"""Multi-fidelity trainings: rungs, a training in parts, promotions decided from the storage, and
the optimiser knobs of the reference workflow (validated, in the adapter's key, searchable)."""

from __future__ import annotations

import re
from dataclasses import replace

import optuna
import pytest
import torch

from autotune.candidates.train import TrainParams, total_steps, train_adapter
from autotune.cli import main
from autotune.decisions.rungs import bracket_of, bracket_shares, losses_at, ranking, rung_ends
from autotune.search.fidelity import promote_paused
from autotune.search.params import suggest, train_params
from autotune.search.record import Attr, read_trials
from autotune.search.stages import adapter_key
from autotune.spaces import load_space
from autotune.spaces.schema import FidelitySection

PARAMS = TrainParams(
    lora_r=8,
    lora_alpha=16,
    lora_dropout=0.1,  # dropout draws from torch's random state: restored with the checkpoint
    learning_rate=2e-3,
    epochs=2,
    batch_size=16,
    max_seq_len=128,
    target_modules=("qkv_proj", "o_proj"),
    seed=0,
    gradient_accumulation_steps=2,
    max_grad_norm=0.3,
)


def test_rungs_end_eta_times_apart_the_last_at_the_full_training():
    assert rung_ends(32, FidelitySection()) == [4, 11, 32]
    assert rung_ends(100, FidelitySection(rungs=2, eta=4)) == [25, 100]
    assert rung_ends(2, FidelitySection()) == [1, 2]  # too short to tell three rungs apart


def test_the_best_share_goes_on_at_least_one():
    assert ranking(1.0, [], 3) == (0, 1)  # above the first rung the first goes on
    assert ranking(1.2, [1.0], 3) == (1, 1)  # the second only when it is the best
    assert ranking(0.9, [1.0, 1.1, 1.2, 1.3, 1.4], 3) == (0, 2)
    assert ranking(1.15, [1.0, 1.1, 1.2, 1.3, 1.4], 3) == (2, 2)  # third of six: stops


def test_the_first_rung_screens_before_any_goes_on():
    assert ranking(0.5, [], 3, screen=3) == (0, 0)  # the best so far waits for two more
    assert ranking(0.5, [1.0], 3, screen=3) == (0, 0)
    assert ranking(0.5, [1.0, 1.1], 3, screen=3) == (0, 1)


@pytest.mark.slow
def test_a_training_in_parts_is_the_straight_training(tiny, tmp_path):
    """What makes a rung checkpoint worth continuing from: the same adapter, bit for bit."""
    space, dataset, base = tiny
    params = replace(PARAMS, target_modules=tuple(space.train.target_modules))
    train, evaluation = dataset.train[:200], dataset.eval[:32]
    folders = {name: tmp_path / name for name in ("straight", "a", "b", "c")}
    for folder in folders.values():
        folder.mkdir()
    straight = train_adapter(base.path, train, evaluation, params, folders["straight"])
    assert straight.total_steps == total_steps(params, len(train)) == 14  # 13 batches / 2, x2
    train_adapter(base.path, train, evaluation, params, folders["a"], stop_at=3)
    train_adapter(
        base.path, train, evaluation, params, folders["b"], stop_at=8, resume=folders["a"]
    )
    parts = train_adapter(base.path, train, evaluation, params, folders["c"], resume=folders["b"])
    assert parts.resumed_from == 8 and parts.steps == 14 and parts.complete
    assert parts.train_losses == straight.train_losses and parts.eval_loss == straight.eval_loss
    assert [step for step, _ in parts.eval_losses] == [3, 8, 14]
    from safetensors.torch import load_file

    one = load_file(folders["straight"] / "adapter_model.safetensors")
    other = load_file(folders["c"] / "adapter_model.safetensors")
    assert one.keys() == other.keys() and all(torch.equal(one[k], other[k]) for k in one)


def paused(
    study: optuna.Study, key: str, losses: list[float], reached: int, bracket: int = 0
) -> None:
    rung = {"reached": reached, "of": 3, "losses": losses, "stopped": "paused", "bracket": bracket}
    attrs = {Attr.ADAPTER_KEY: key, Attr.RUNG: rung}
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"lora_r": len(study.trials)},
            distributions={"lora_r": optuna.distributions.IntDistribution(0, 100)},
            user_attrs=attrs,
        )
    )


def test_a_paused_training_is_promoted_once_enough_worse_ones_reach_its_rung():
    study = optuna.create_study(directions=["maximize", "minimize"])
    paused(study, "a", [1.0], 1)
    paused(study, "b", [0.8], 1)  # paused too, though it ranks first of two, and one goes on
    assert promote_paused(study, FidelitySection(eta=2, screen=2)) == [
        1
    ]  # b is the best of two at rung 1 and paused
    assert promote_paused(study, FidelitySection(eta=2, screen=2)) == []  # queued once
    (queued,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert queued.user_attrs[Attr.PROMOTED_FROM] == 1
    assert queued.system_attrs["fixed_params"] == {"lora_r": 1}
    paused(study, "c", [1.5], 1)
    paused(study, "d", [1.6], 1)
    # four at rung 1 now: the best two go on, so a (second) is promoted as well
    assert promote_paused(study, FidelitySection(eta=2, screen=2)) == [0]
    assert losses_at(read_trials(study), 0, exclude="a") == {"b": 0.8, "c": 1.5, "d": 1.6}


def test_a_configuration_that_went_on_is_not_promoted_again():
    study = optuna.create_study(directions=["maximize", "minimize"])
    paused(study, "a", [1.0], 1)
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE,
            values=[0.5, 1.0],
            user_attrs={Attr.ADAPTER_KEY: "a", Attr.RUNG: {"reached": 3, "losses": [1, 0.9, 0.8]}},
        )
    )
    assert promote_paused(study, FidelitySection()) == []


def test_hyperband_places_new_configurations_in_its_brackets_shares():
    fidelity = FidelitySection(rungs=3, eta=3, brackets=3)
    assert bracket_shares(fidelity) == [9, 5, 3]  # Hyperband's n for s = 2, 1, 0
    study = optuna.create_study(directions=["maximize", "minimize"])
    placed = []
    for index in range(17):
        bracket = bracket_of(read_trials(study), f"k{index}", fidelity)
        placed.append(bracket)
        paused(study, f"k{index}", [1.0], 1, bracket)
    assert placed[:5] == [0, 1, 0, 2, 0]  # the hedging brackets start early, not last
    assert [placed.count(b) for b in range(3)] == [9, 5, 3]
    # a configuration keeps its bracket: a promotion, a sibling, a retry after a crash
    assert bracket_of(read_trials(study), "k3", fidelity) == 2
    assert bracket_of(read_trials(study), "new", FidelitySection()) == 0  # plain halving


def test_a_bracket_ranks_only_its_own_configurations():
    """x started in bracket 2 (first judged at rung 2): it ranks there among its bracket only,
    not behind the aggressive bracket's survivors, which trained the same steps."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    paused(study, "a", [0.9, 0.2], 2)
    paused(study, "b", [1.0, 0.3], 2)
    paused(study, "c", [1.1, 0.35], 2)
    paused(study, "x", [0.95, 0.5], 2, bracket=1)
    fidelity = FidelitySection(eta=3, screen=1, brackets=3)
    assert promote_paused(study, fidelity) == [0, 3]  # a: best of three; x: best of one
    assert losses_at(read_trials(study), 1) == {"a": 0.2, "b": 0.3, "c": 0.35}  # bracket 0 alone


def test_more_brackets_than_rungs_is_one_line_with_exit_2(write_space, capsys):
    space = write_space({"strategy": {"fidelity": {"rungs": 2, "brackets": 3}}})
    assert main(["--space", str(space), "--target", "cpu", "--dry-run"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [
        f"autotune: error: {space}: strategy.fidelity: expected brackets at most rungs (2), got 3"
    ]


SEARCHED_KNOBS = {
    "gradient_accumulation_steps": {"choices": [1, 4]},
    "max_grad_norm": {"low": 0.1, "high": 1.0},
    "weight_decay": {"choices": [0.0, 0.1]},
    "lr_schedule": {"choices": ["cosine", "constant"]},
    "adam_beta2": 0.95,
    "max_steps": {"low": 5, "high": 20},
}


def test_the_optimiser_knobs_are_searched_and_reach_the_training(write_space):
    # tiny.yaml fixes lr_schedule in `train`: a searched knob is in one place only
    changes = {"search": SEARCHED_KNOBS, "train": {"lr_schedule": None}}
    space = load_space(write_space(changes), "cpu")
    trial = optuna.create_study(directions=["maximize", "minimize"]).ask()
    training = train_params(suggest(trial, space), space)
    assert training.gradient_accumulation_steps in (1, 4) and 0.1 <= training.max_grad_norm <= 1
    assert training.weight_decay in (0.0, 0.1) and training.lr_schedule in ("cosine", "constant")
    assert training.adam_beta2 == 0.95 and 5 <= training.max_steps <= 20
    assert total_steps(training, 10_000) == training.max_steps  # steps instead of epochs


def test_the_optimiser_knobs_are_part_of_the_adapter_key():
    changes = [
        {"gradient_accumulation_steps": 4},
        {"max_grad_norm": 1.0},
        {"weight_decay": 0.0},
        {"adam_beta1": 0.8},
        {"adam_beta2": 0.95},
        {"max_steps": 10},
    ]
    keys = {adapter_key("base", "data", replace(PARAMS, **c), {}) for c in changes}
    assert len(keys | {adapter_key("base", "data", PARAMS, {})}) == len(changes) + 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"train": {"max_grad_norm": -0.3}}, "train.max_grad_norm"),
        ({"train": {"gradient_accumulation_steps": 0}}, "train.gradient_accumulation_steps"),
        ({"train": {"adam_beta2": 1.0}}, "train.adam_beta2"),
        ({"train": {"max_steps": "ten"}}, "train.max_steps"),
        ({"search": {"weight_decay": {"choices": [0.0, 2.0]}}}, "search.weight_decay"),
        ({"train": {"weight_decay": 0.1}, "search": {"weight_decay": {"choices": [0.0, 0.1]}}},
         "search.weight_decay"),
        ({"strategy": {"fidelity": {"eta": 1}}}, "strategy.fidelity.eta"),
    ],
)  # fmt: skip
def test_a_bad_training_knob_is_one_line_with_exit_2(write_space, capsys, changes, field):
    space = write_space(changes)
    code = main(["--space", str(space), "--target", "cpu", "--dry-run"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and f"{space}: {field}: " in lines[0], lines


def test_with_nothing_new_proposed_the_best_paused_training_goes_on():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for key, loss in (("a", 1.0), ("b", 0.9), ("c", 1.2), ("d", 1.3)):
        paused(study, key, [loss], 1)
    paused(study, "e", [0.95, 0.7], 2)  # went on from rung 1, paused at rung 2 ...
    study.add_trial(  # ... behind g, which finished
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE,
            values=[0.5, 1.0],
            user_attrs={Attr.ADAPTER_KEY: "g", Attr.RUNG: {"reached": 3, "losses": [0.85, 0.6]}},
        )
    )
    fidelity = FidelitySection(eta=3, screen=3)
    assert promote_paused(study, fidelity) == [1]  # b: second of six at rung 1, two go on
    assert promote_paused(study, fidelity) == []  # b's promotion waits in the queue
    # the sampler proposes nothing new: e, paused on the higher rung, goes on anyway
    assert promote_paused(study, fidelity, idle=True) == [4]


@pytest.mark.slow
def test_a_study_trains_in_rungs_and_shows_its_progress(write_space, tmp_path):
    """The default strategy end to end: new configurations are screened on the first rung,
    the best go on from their rung checkpoints, only finished trainings are measured, and the
    training's progress shows in a pipe."""
    import json
    import subprocess
    import sys

    from autotune.candidates.cache import MANIFEST

    changes = {
        "model": {"tiny": {"pretrain_epochs": 0}},
        "data": {"eval_fraction": 0.02},
        "train": {"epochs": 0.2, "threads": 1},
        "latency": {"repeats": 3},
        "strategy": {"expand": [], "confirm": False},
    }
    out, cache = tmp_path / "run", tmp_path / "cache"
    argv = [sys.executable, "-m", "autotune", "--space", str(write_space(changes)), "--target",
            "cpu", "--out", str(out), "--cache", str(cache), "--trials", "2"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert len(complete) == 2
    assert any("none go on before 3 are ranked" in t.user_attrs[Attr.PRUNED] for t in pruned)
    for trial in complete:
        rung = trial.user_attrs[Attr.RUNG]
        assert rung["reached"] == rung["of"] == 3 and len(rung["losses"]) == 3
        adapter = cache / "adapter" / trial.user_attrs[Attr.ADAPTER_KEY]
        trained = json.loads((adapter / "autotune_train.json").read_text())
        assert trained["resumed_from"] == rung["ends"][1] and trained["steps"] == rung["ends"][2]
        curve = trial.user_attrs[Attr.LOSS_CURVE]
        assert [step for step, _ in curve["eval"]] == rung["ends"]
    for trial in pruned:  # a paused training left its rung checkpoint, and was not measured
        assert Attr.METRICS not in trial.user_attrs
    rungs = [p for p in (cache / "rung").iterdir() if (p / MANIFEST).is_file()]
    assert len(rungs) >= 2 * len(complete)
    # In a pipe the training shows a plain line per tenth of its steps.
    lines = re.findall(r"train \d+/\d+ \(\d+%\) loss [\d.]+ · [\d.]+ examples/s · eta", done.stderr)
    parts = len(rungs) + len(list((cache / "adapter").glob(f"*/{MANIFEST}")))
    assert 0 < len(lines) <= 11 * parts  # at most a line per tenth of each part's steps
    assert "## Training" in (out / "report.md").read_text()


@pytest.mark.slow
def test_hyperband_judges_each_configuration_from_its_brackets_rung(write_space, tmp_path):
    """With three brackets the second configuration starts in the second: it trains through rung 1
    unjudged and ranks at rung 2 among its bracket only, so both trainings finish whatever
    their losses; the report's rung table shows the brackets."""
    changes = {
        "model": {"tiny": {"pretrain_epochs": 0}},
        "data": {"eval_fraction": 0.02},
        "train": {"epochs": 0.2, "threads": 1},
        "latency": {"repeats": 3},
        "strategy": {
            "expand": [],
            "confirm": False,
            "fidelity": {"rungs": 3, "eta": 3, "screen": 1, "brackets": 3},
        },
    }
    out = tmp_path / "run"
    space = str(write_space(changes))
    argv = ["--space", space, "--target", "cpu", "--out", str(out), "--trials", "2", "--quiet"]
    assert main([*argv, "--cache", str(tmp_path / "cache")]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    rungs = [t.user_attrs[Attr.RUNG] for t in trials]
    assert [r["bracket"] for r in rungs] == [0, 1]
    assert all(r["reached"] == 3 and not r["stopped"] for r in rungs)
    report = (out / "report.md").read_text()
    assert "its bracket (first judged at that rung)" in report
