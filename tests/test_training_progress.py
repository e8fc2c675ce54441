"""Training progress: on the terminal while a trial trains, and in the report afterwards (loss
curves, rungs), on a study built here with the attributes the training records."""

from __future__ import annotations

import io
import itertools
import re

import optuna
import pytest
from rich.console import Console

from autotune.console.progress import Progress
from autotune.reports.outputs import write_report
from autotune.reports.results import RunResults
from autotune.reports.training import loss_curve_figure, training_blocks
from autotune.search.record import Attr

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def train(progress: Progress, total: int = 128) -> None:
    progress.trial_started(3, {"lora_r": 8})
    with progress.step("train"):
        for step in range(1, total + 1):
            progress.training_step(step, total, 2.0 - step / total, 45.1)


def seconds() -> itertools.count:
    """A clock that moves one second each time it is read."""
    return itertools.count(0.0)


def test_training_in_a_pipe_prints_a_line_per_tenth():
    stream = io.StringIO()
    clock = seconds()
    progress = Progress(console=Console(file=stream, width=100), clock=lambda: next(clock))
    train(progress)
    lines = [line for line in stream.getvalue().splitlines() if line.startswith("  train ")]
    assert 1 <= len(lines) <= 11
    # A step a second: at step 13, 115 steps to go.
    assert lines[0] == "  train 13/128 (10%) loss 1.898 · 45.1 examples/s · eta 1m 55s"
    assert lines[-1].startswith("  train 128/128 (100%) loss 1.000") and "\x1b" not in lines[-1]


def test_training_prints_nothing_when_quiet():
    stream = io.StringIO()
    train(Progress(quiet=True, console=Console(file=stream, width=100)))
    assert stream.getvalue() == ""


def test_training_on_a_terminal_fills_the_stage_line():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120, highlight=False)
    progress = Progress(console=console)
    with progress.study(total=4, completed=1):
        train(progress)
        with progress.step("merge"):
            pass
    text = ANSI.sub("", stream.getvalue())
    assert "trial 3 · train" in text and "13/128 · loss 1.898 · 45.1 ex/s · eta" in text
    assert "128/128 · loss 1.000" in text and "trial 3 · merge" in text
    assert "  train 13/128" not in text  # the plain lines are for pipes and logs


def curve(steps: int, start: float) -> dict:
    return {
        "train": [[s, start - s / 100] for s in range(1, steps + 1, 4)],
        "eval": [[s, start - s / 90] for s in range(steps // 3, steps + 1, steps // 3)],
    }


def trial(values: list[float] | None, precision: str, attrs: dict) -> optuna.trial.FrozenTrial:
    """A completed trial with these objective values, or a pruned one (no values)."""
    params = {"lora_r": 8, "learning_rate": 1e-3, "precision": precision}
    if values is None:
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED, user_attrs={Attr.PARAMS: params, **attrs}
        )
    accuracy, e2e = values
    return optuna.trial.create_trial(
        values=values,
        user_attrs={
            Attr.PARAMS: params,
            Attr.METRICS: {"accuracy": accuracy, "e2e_ms.p50": e2e},
            **attrs,
        },
        constraints={"accuracy >= 0.6": 0.6 - accuracy, "e2e_ms <= 5": e2e - 5},
    )


@pytest.fixture
def study_results(write_space) -> RunResults:
    """Three trials: a training that reached every rung and its int4 sibling (which kept the same
    curve), and a training stopped at its first rung."""
    from autotune.spaces import load_space

    space = load_space(write_space(), "cpu")
    study = optuna.create_study(directions=list(space.objectives.values()))
    study.set_user_attr("space", space.model_dump(mode="json"))
    study.set_user_attr("target", "cpu")
    full = {"reached": 3, "of": 3, "steps": 120, "losses": [2.0, 1.6, 1.3], "stopped": ""}
    stopped = "eval loss 2.6 at rung 1 is in the worse half of 2 trainings"
    first = {"reached": 1, "of": 3, "steps": 40, "losses": [2.6], "stopped": stopped}
    trained = {Attr.ADAPTER_KEY: "a", Attr.LOSS_CURVE: curve(120, 2.4), Attr.RUNG: full}
    study.add_trial(trial([0.8, 3.0], "fp32", trained))
    study.add_trial(trial([0.7, 2.0], "int4", {**trained, Attr.SIBLING_OF: 0}))
    pruned = {Attr.ADAPTER_KEY: "b", Attr.LOSS_CURVE: curve(40, 2.9), Attr.RUNG: first}
    study.add_trial(trial(None, "fp32", {**pruned, Attr.PRUNED: stopped}))
    return RunResults.of(study, space, "cpu", label="training")


def test_report_has_the_loss_curves_and_the_rungs(study_results, tmp_path):
    outputs = write_report(study_results, tmp_path)
    assert outputs.figures["loss_curves"].read_bytes()[:4] == b"\x89PNG"
    report = outputs.report_md.read_text()
    assert "## Training" in report and "![Loss curve per training](loss_curves.png)" in report
    assert "| training | trials | state | rung | steps | train loss | rung 1 | rung 2 |" in report
    assert "| 0 | 0, 1 | COMPLETE | 3 of 3 | 120 | 1.23 | 2 | 1.6 | 1.3 |  |" in report
    stopped = "eval loss 2.6 at rung 1 is in the worse half of 2 trainings"
    assert f"| 2 | 2 | PRUNED | 1 of 3 | 40 | 2.53 | 2.6 |  |  | {stopped} |" in report
    assert 'alt="Loss curve per training"' in outputs.report_html.read_text()


def test_one_curve_per_training_not_per_sibling(study_results):
    figure = loss_curve_figure(study_results)
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    chosen = study_results.selection.chosen.number
    mark = " (selected)" if chosen == 0 else f" (selected trial {chosen}'s)"
    assert labels == [f"trial 0{mark}", "trial 2"]


def test_no_training_section_without_curves_or_rungs(study_results):
    for record in study_results.records:
        record.loss_curve, record.rung = {}, None
    assert training_blocks(study_results, {}) == []


def test_the_training_section_states_throughput_when_trials_recorded_it(study_results, tmp_path):
    study_results.records[0].metrics.update(train_tokens_per_s=812.4, train_flops_share=0.263)
    study_results.records[1].metrics.update(train_tokens_per_s=812.4, train_flops_share=0.263)
    outputs = write_report(study_results, tmp_path)
    report = outputs.report_md.read_text()
    chosen = study_results.selection.chosen.number
    whose = "The selected trial's training" if chosen in (0, 1) else "Trial 0's training"
    assert (
        f"{whose} processed 812 tokens a second (non-pad, optimiser steps only), 26% of" in report
    )
    assert "| train loss | tokens/s | FLOP share | rung 1 |" in report
    assert "| 1.23 | 812 | 0.263 |" in report
    # the pruned training recorded none: its cells stay empty
    assert "| 2 | 2 | PRUNED | 1 of 3 | 40 | 2.53 |  |  | 2.6 |" in report


def test_no_throughput_line_without_the_figures(study_results):
    texts = [b for b in training_blocks(study_results, {}) if "tokens a second" in str(b)]
    assert texts == []
