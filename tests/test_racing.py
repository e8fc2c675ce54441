"""Racing evaluation: the dominance rule on hand-made trials, the raced measurement on a real
model, and a real study in which a dominated candidate stops early."""

from __future__ import annotations

import json

import optuna
import pytest
import torch
import yaml

from autotune.decisions.racing import dominator, racing_stages
from autotune.search.racing import Racer, rivals
from autotune.search.record import Attr
from autotune.spaces import SpaceError, load_space
from tests.conftest import merge, tiny_dict

torch.set_num_threads(1)
EXAMPLES = 592
FIGURES = {"e2e_ms.p50": 3.0}  # a candidate as fast as the trials


def study_with(*trials: tuple[str, float, bool]) -> optuna.Study:
    """A study of completed trials, each (correctness string, e2e_ms.p50, feasible)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for correct, e2e, feasible in trials:
        accuracy = correct.count("1") / len(correct)
        study.add_trial(
            optuna.trial.create_trial(
                values=[accuracy, e2e],
                user_attrs={
                    Attr.METRICS: {"accuracy": accuracy, "e2e_ms.p50": e2e, "size_mb": 10.0},
                    Attr.MEASURED: {"correct": correct},
                },
                constraints={"accuracy >= 0.5": -1.0 if feasible else 1.0},
            )
        )
    return study


def right(first: int, of: int = 64, rest: str = "1" * (EXAMPLES - 64)) -> str:
    """`first` right answers, then wrong ones up to `of`, then `rest`."""
    return "1" * first + "0" * (of - first) + rest


@pytest.fixture
def space(write_space):
    return load_space(write_space(), "cpu")


def race(space, study: optuna.Study) -> Racer:
    return Racer(study, space, racing_stages(space, ["joy", "fear"], EXAMPLES), EXAMPLES)


def bools(text: str) -> list[bool]:
    return [c == "1" for c in text]


def test_a_clearly_worse_no_faster_candidate_stops_after_64(space):
    study = study_with((right(56), 3.0, True))
    why = race(space, study)(64, bools(right(20, rest="")), {"e2e_ms.p50": 3.2})
    assert why is not None and why.startswith("dominated after 64 of 592 examples by trial 0")
    assert "accuracy 0.875 vs 0.312 on those 64" in why and "e2e_ms.p50 3 vs 3.2" in why


def test_a_tie_is_not_stopped(space):
    study = study_with((right(40), 3.0, True))
    assert race(space, study)(64, bools(right(40, rest="")), {"e2e_ms.p50": 3.2}) is None


def test_a_faster_worse_candidate_is_not_stopped(space):
    study = study_with((right(56), 3.0, True))
    assert race(space, study)(64, bools(right(20, rest="")), {"e2e_ms.p50": 2.9}) is None


def test_only_feasible_trials_on_the_whole_split_dominate(space):
    study = study_with((right(56), 3.0, False), (right(56, rest="1" * 10), 3.0, True))
    assert rivals(study, EXAMPLES) == []
    assert race(space, study)(64, bools(right(20, rest="")), {"e2e_ms.p50": 3.2}) is None


def test_the_comparison_is_paired_on_the_first_examples(space):
    # 40 vs 30 right of 64: apart as a paired comparison (the candidate is right on a subset of
    # the trial's examples: 10 discordant, all one way), not as two unpaired proportions.
    study = study_with((right(40), 3.0, True))
    assert race(space, study)(64, bools(right(30, rest="")), {"e2e_ms.p50": 3.0}) is not None
    # The same 48 right each, on different examples: a tie, however it is split.
    shifted = "0" * 16 + "1" * 48
    assert race(space, study_with((right(48), 3.0, True)))(64, bools(shifted), FIGURES) is None
    # Only the first 64 count: a trial far better on the rest of the split is a tie here.
    study = study_with((right(30, rest="1" * 528), 3.0, True))
    assert race(space, study)(64, bools(right(30, rest="")), {"e2e_ms.p50": 3.2}) is None


def test_the_strongest_dominator_is_named(space):
    study = study_with((right(50), 3.0, True), (right(60), 3.1, True))
    found = dominator(
        space, {"e2e_ms.p50": 3.2}, bools(right(20, rest="")), rivals(study, 592), 592
    )
    assert found is not None and found.rival == 1 and found.examples == 64


def test_which_spaces_race(write_space):
    raced = load_space(write_space(), "cpu")
    assert racing_stages(raced, ["joy"], 592) == [64, 256]
    assert racing_stages(raced, ["joy"], 200) == [64]
    assert racing_stages(raced, None, 592) == []  # generation: scored in full
    quant = load_space(
        write_space({"objectives": {"accuracy": "maximize", "quant_drop": "minimize"}}), "cpu"
    )
    assert racing_stages(quant, ["joy"], 592) == []  # a prefix cannot answer for quant_drop
    off = tiny_dict()
    off["strategy"] = {"racing": None}
    assert load_space(write_space(text=yaml.safe_dump(off)), "cpu").strategy.racing is None
    with pytest.raises(SpaceError, match="strategy.racing.stages"):
        load_space(write_space({"strategy": {"racing": {"stages": [256, 64]}}}), "cpu")


# --------------------------------------------------------------------------- real parts


@pytest.mark.slow
def test_a_raced_measurement_is_partial_or_the_full_one(tiny, candidate):
    from autotune.evaluators.measurement import benchmark
    from autotune.spaces import LatencySection

    _, dataset, _ = tiny
    examples, settings = dataset.eval[:60], LatencySection(warmup=1, repeats=3)
    full = benchmark(candidate / "fp32", "cpu", settings, examples, dataset.labels)
    asked = []

    def never(n: int, correct: list[bool], figures: dict[str, float]) -> None:
        asked.append((n, len(correct), "e2e_ms.p50" in figures))

    raced = benchmark(
        candidate / "fp32", "cpu", settings, examples, dataset.labels, stages=[16, 40], stop=never
    )
    assert asked == [(16, 16, True), (40, 40, True)]
    assert raced.accuracy == full.accuracy and raced.metrics["accuracy"] == full.accuracy.accuracy
    assert raced.to_json()["examples"] == {"scored": 60, "of": 60} and not raced.stopped
    stopped = benchmark(
        candidate / "fp32",
        "cpu",
        settings,
        examples,
        dataset.labels,
        stages=[16, 40],
        stop=lambda n, correct, figures: "enough",
    )
    assert stopped.stopped == "enough" and stopped.to_json()["examples"] == {"scored": 16, "of": 60}
    assert "accuracy" not in stopped.metrics and "macro_f1" not in stopped.metrics
    assert stopped.metrics["partial_examples"] == 16
    assert stopped.metrics["partial_accuracy"] == sum(full.accuracy.correct[:16]) / 16
    assert {"latency", "accuracy", "racing"} <= set(stopped.seconds)


@pytest.mark.slow
def test_a_dominated_candidate_ends_pruned_and_the_study_completes(
    write_space, shared_cache, tmp_path, capsys
):
    from autotune.console.summary import print_summary
    from autotune.reports.outputs import write_report
    from autotune.reports.results import RunResults
    from autotune.search.events import StudyEvents
    from autotune.search.run import prepare_run
    from autotune.search.study import open_study, run_study

    # A well trained int8 model, then an all-but-untrained fp32 one (larger: no better on size),
    # then the first again (every stage a cache hit, so it is not raced).
    changes = {
        "data": {"max_eval": 320},
        "train": {"epochs": 2},
        "search": {
            "lora_r": 32,
            "learning_rate": {"choices": [3.0e-3, 1.0e-7], "low": None, "high": None, "log": None},
            "precision": {"choices": ["int8", "fp32"]},
            "int4_block_size": None,
            "int4_accuracy_level": None,
        },
        "objectives": {"accuracy": "maximize", "e2e_ms": None, "size_mb": "minimize"},
        "constraints": None,
        "latency": {"warmup": 1, "repeats": 3},
    }
    raw = merge(tiny_dict(), changes)
    raw["strategy"] = {"expand": [], "fidelity": None, "prune": False, "confirm": False}
    space = load_space(write_space(text=yaml.safe_dump(raw)), "cpu")
    run = prepare_run(space, "cpu", tmp_path / "run", shared_cache, StudyEvents())
    study = open_study(space, "cpu", f"sqlite:///{tmp_path / 'study.db'}", seed=0)
    good, bad = {"learning_rate": 3.0e-3, "precision": "int8"}, {"learning_rate": 1.0e-7}
    for params in (good, {**bad, "precision": "fp32"}, good):
        study.enqueue_trial(params)
    outcome = run_study(run, study, trials=2, timeout=None)

    states = [t.state.name for t in study.trials]
    assert outcome.completed == 2 and states == ["COMPLETE", "PRUNED", "COMPLETE"], states
    pruned = study.trials[1]
    raced = pruned.user_attrs[Attr.RACED]
    assert raced["dominated_by"] == 0 and raced["examples"] in (64, 256) and raced["of"] == 320
    assert pruned.user_attrs[Attr.PRUNED] == raced["reason"]
    assert raced["reason"].startswith(f"dominated after {raced['examples']} of 320 examples")
    metrics = pruned.user_attrs[Attr.METRICS]
    assert "accuracy" not in metrics and metrics["partial_examples"] == raced["examples"]
    assert metrics["e2e_ms.p50"] > 0 and metrics["size_mb"] > 0
    assert len(pruned.user_attrs[Attr.MEASURED]["partial_correct"]) == raced["examples"]
    # The partial measurement is nowhere in the cache; the repeat of trial 0 is not raced.
    measured = json.loads((tmp_path / "run" / "trials" / "1" / "measurement.json").read_text())
    assert measured["examples"]["scored"] == raced["examples"] and measured["stopped"]
    entries = [json.loads(p.read_text()) for p in (shared_cache / "measure").glob("*/*.json")]
    assert all(e.get("stopped") is None for e in entries if "metrics" in e)
    assert Attr.RACED not in study.trials[2].user_attrs
    # The report: the pruned trial with its reason, never a candidate.
    results = RunResults.of(study, space, "cpu", "racing")
    row = results.row(1)
    assert row["state"] == "PRUNED" and row["error"].startswith("dominated after")
    assert row["partial_accuracy"] < results.row(0)["accuracy"]
    assert 1 not in [c.number for c in results.candidates]
    outputs = write_report(results, tmp_path / "report")
    report = outputs.report_md.read_text()
    assert "Failed and pruned trials" in report and raced["reason"] in report
    # The end-of-study table: the raced trial with its latency and partial accuracy.
    capsys.readouterr()
    print_summary(space, outputs)
    (line,) = [r for r in capsys.readouterr().out.splitlines() if r.startswith("│     1 ")]
    assert f"({row['partial_accuracy']:.3g})" in line and "pruned" in line
