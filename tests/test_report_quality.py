"""The report's side of the quality measures, on runs written as data (no training): the
examples each model answered, per-label precision, recall and confusion, collapsed trials
flagged, and every figure under its own name (a generative run's report never says accuracy).

The study is a real in-memory Optuna study holding the trial records the search would write
(search/record.py: stored_attrs), its generations files where the search writes them
(trials/<n>/generations.jsonl, reference/generations.jsonl); the reports read it as they read
any run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pandas as pd
import pytest

from autotune.console.summary import print_summary
from autotune.decisions.record import TrialRecord
from autotune.reports.compare import compare_runs
from autotune.reports.confusion import confusion_of
from autotune.reports.model_card import model_card
from autotune.reports.outputs import write_report
from autotune.reports.results import RunResults
from autotune.search.record import REFERENCE_STATE, Attr, stored_attrs
from autotune.spaces import Space, load_space

LABELS = ["joy", "sadness", "fear", "surprise"]
# Eight eval examples, two per label, in eval order.
REFERENCES = ["joy", "sadness", "fear", "surprise"] * 2


def trial(space: Space, number: int, metrics: dict, measured: dict, precision: str = "fp32"):
    """A completed trial as the search stores it, its constraints judged on `metrics`."""
    record = TrialRecord(
        number=number,
        state="COMPLETE",
        params={"lora_r": 8 * (number + 1), "learning_rate": 1e-3, "precision": precision},
        metrics=metrics,
        seconds={"train": 1.0, "measure": 0.5},
        measured={"train_examples": 32, "eval_examples": len(REFERENCES), **measured},
    )
    violations = {
        f"constraints:{c}": c.violation(space.metric(metrics, c.metric))
        for c in space.parsed_constraints()
    }
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE,
        values=[space.metric(metrics, n) for n in space.objectives],
        user_attrs=stored_attrs(record),
        system_attrs=violations,
    )


def study_of(space: Space, trials: list, base_metrics: dict) -> optuna.Study:
    directions = [space.objectives[n] for n in space.objectives]
    study = optuna.create_study(directions=directions)
    for frozen in trials:
        study.add_trial(frozen)
    base = TrialRecord(-1, REFERENCE_STATE, params={"precision": "fp32"}, metrics=base_metrics)
    study.set_user_attr(Attr.REFERENCE, stored_attrs(base))
    return study


def write_rows(path: Path, prompts, references, predictions, name: str, scores) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"prompt": p, "reference": r, "prediction": q, "scores": {name: s}}
        for p, r, q, s in zip(prompts, references, predictions, scores, strict=True)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def right(predictions: list[str]) -> list[float]:
    return [float(p == r) for p, r in zip(predictions, REFERENCES, strict=True)]


def classification_metrics(predictions: list[str], e2e: float, collapsed: float) -> dict:
    scores = right(predictions)
    accuracy = sum(scores) / len(scores)
    return {
        "accuracy": accuracy,
        "accuracy.lo": max(accuracy - 0.3, 0.0),
        "accuracy.hi": min(accuracy + 0.3, 1.0),
        "nll": 1.5 - accuracy,
        "e2e_ms.p50": e2e,
        "size_mb": 2.0,
        "collapsed": collapsed,
    }


GOOD = ["joy", "sadness", "fear", "joy", "joy", "sadness", "surprise", "surprise"]
ONE_LABEL = ["joy"] * 8
BASE = ["fear", "fear", "fear", "joy", "sadness", "fear", "fear", "joy"]


@pytest.fixture
def classification_run(write_space, tmp_path) -> RunResults:
    """The tiny space: trial 0 labels well, trial 1 answers "joy" to everything (collapsed),
    the untrained base mostly "fear"."""
    space = load_space(write_space(), "cpu")
    collapse = {
        "flagged": True,
        "reason": "collapsed: 8 of 8 predictions are 'joy'",
        "top": "joy",
        "top_share": 1.0,
    }
    trials = [
        trial(
            space, 0, classification_metrics(GOOD, 3.0, 0.0), {"scores": {"accuracy": right(GOOD)}}
        ),
        trial(
            space,
            1,
            classification_metrics(ONE_LABEL, 1.0, 1.0),
            {"scores": {"accuracy": right(ONE_LABEL)}, "collapse": collapse},
        ),
    ]
    study = study_of(space, trials, classification_metrics(BASE, 3.0, 0.0))
    prompts = [f"### Text: phrase {i}\n### The tone is:\n" for i in range(len(REFERENCES))]
    folder = tmp_path / "run"
    for number, predictions in ((0, GOOD), (1, ONE_LABEL)):
        path = folder / "trials" / str(number) / "generations.jsonl"
        write_rows(path, prompts, REFERENCES, predictions, "accuracy", right(predictions))
    reference = folder / "reference" / "generations.jsonl"
    write_rows(reference, prompts, REFERENCES, BASE, "accuracy", right(BASE))
    return RunResults.of(study, space, "cpu", "run", folder)


def test_confusion_counts_precision_and_recall_on_a_small_case():
    confusion = confusion_of(
        predictions=["a", "a", "b", " b", "c", "a"],
        references=["a", "b", "b", "b", "a", "c"],
        labels=["a", "b"],
    )
    # "c" is outside the labels: a row and a column of its own, after them.
    assert confusion.labels == ("a", "b", "c")
    assert confusion.counts == ((1, 0, 1), (1, 2, 0), (1, 0, 0))
    assert confusion.precision("a") == pytest.approx(1 / 3)  # predicted a: a, b, c
    assert confusion.recall("b") == pytest.approx(2 / 3)  # b: predicted a, b, b
    assert confusion.precision("b") == 1.0 and confusion.recall("a") == 0.5
    assert confusion.recall("c") == 0.0 and confusion.precision("c") == 0.0
    nothing = confusion_of(["a"], ["a"], ["a", "b"])
    assert math.isnan(nothing.precision("b")) and math.isnan(nothing.recall("b"))
    with pytest.raises(ValueError, match="2 predictions against 1 references"):
        confusion_of(["a", "b"], ["a"], ["a", "b"])


def test_classification_report_shows_examples_per_label_figures_and_the_collapse(
    classification_run, capsys
):
    results = classification_run
    assert results.selection.chosen.number == 0  # trial 1 is faster, but collapsed
    outputs = write_report(results, results.folder)
    report = outputs.report_md.read_text()

    # The examples: the same first rows for the base and the top tier, each answer scored.
    section = report.split("## What the models said")[1].split("\n## ")[0]
    assert "untrained base" in section and "trial 0 (selected)" in section
    assert "| 1 | prompt | ### Text: phrase 0 ↵ ### The tone is: |" in section
    assert "| 1 | reference | joy |" in section
    assert "| 1 | untrained base | fear | 0 |" in section
    assert "| 1 | trial 0 (selected) | joy | 1 |" in section
    assert "| 5 | trial 0 (selected) | joy | 1 |" in section and "| 6 |" not in section

    # Per label, from the generations: the selected trial's and the base's.
    per_label = report.split("## Per label")[1].split("\n## ")[0]
    assert "trial 0 (selected): confusion matrix" in per_label
    assert "untrained base: confusion matrix" in per_label
    trial_part = per_label.split("untrained base: precision")[0]
    # joy: 2 references, predicted 3 times (twice right): precision 2/3, recall 1.
    assert "| joy | 2 | 3 | 2 | 0.6667 | 1 |" in trial_part
    # fear: 2 references, one predicted fear, the other surprise; never mistaken.
    assert "| fear | 2 | 1 | 1 | 1 | 0.5 |" in trial_part
    # rows are references: the surprises were called joy once and surprise once.
    assert "| surprise | 1 | 0 | 0 | 1 |" in trial_part

    # The collapsed trial: marked in the tables, named with its reason.
    assert "trial 1 not selected: collapsed: 8 of 8 predictions are 'joy'" in report
    all_trials = report.split("## All trials")[1]
    header = next(line for line in all_trials.splitlines() if line.startswith("| number"))
    assert header.startswith("| number | collapsed |")
    assert "| 1 | yes |" in all_trials and "| 0 |  |" in all_trials
    csv = pd.read_csv(outputs.trials_csv)
    assert csv["collapsed"].tolist() == [0.0, 1.0]
    assert csv["collapse"].fillna("").tolist() == ["", "collapsed: 8 of 8 predictions are 'joy'"]
    html = outputs.report_html.read_text()
    assert "What the models said" in html and "trial 1 not selected: collapsed" in html

    # The terminal summary: the mark, the sentence, the gain in the headline's own name.
    space = results.space
    print_summary(space, outputs)
    printed = capsys.readouterr().out
    assert "! collapsed" in printed and "1!" in printed and "0*" in printed
    assert "trial 1 not selected: collapsed: 8 of 8 predictions are 'joy'" in printed
    assert "the selected trial 0 against it: accuracy +50.0 points" in printed
    assert "accuracy +50.0 points" in report


def test_the_sections_are_left_out_without_generations(classification_run, tmp_path):
    results = classification_run
    results.folder = tmp_path / "elsewhere"  # an older run: no generations files
    report = write_report(results, results.folder).report_md.read_text()
    assert "## What the models said" not in report and "## Per label" not in report
    assert "## All trials" in report


def test_when_every_trial_collapsed_the_report_shows_what_they_said(write_space, tmp_path):
    space = load_space(write_space(), "cpu")
    collapse = {"flagged": True, "reason": "collapsed: 8 of 8 predictions are 'joy'"}
    metrics = classification_metrics(ONE_LABEL, 1.0, 1.0)
    study = study_of(space, [trial(space, 0, metrics, {"collapse": collapse})], metrics)
    folder = tmp_path / "run"
    prompts = [f"phrase {i}" for i in range(len(REFERENCES))]
    path = folder / "trials" / "0" / "generations.jsonl"
    write_rows(path, prompts, REFERENCES, ONE_LABEL, "accuracy", right(ONE_LABEL))
    results = RunResults.of(study, space, "cpu", "run", folder)
    assert results.selection.chosen is None
    report = write_report(results, folder).report_md.read_text()
    assert "No candidate selected: every completed trial collapsed" in report
    assert "- trial 0 not selected: collapsed: 8 of 8 predictions are 'joy'" in report
    assert "| 2 | trial 0 (collapsed) | joy | 0 |" in report
    assert "## Per label" not in report  # neither a selected trial nor a base left answers


def generative_space(write_space, name: str = "space.yaml", data: dict | None = None) -> Space:
    raw = {
        "data": {"labels": None, **(data or {})},
        "objectives": None,
        "constraints": None,
        "select": None,
        "search": {"int4_block_size": None, "int4_accuracy_level": None},
    }
    path = write_space(raw, name=name)
    text = path.read_text() + (
        "objectives: {rouge_l: maximize, e2e_ms: minimize}\n"
        "constraints: {e2e_ms: '<= 5'}\n"
        "select: {prefer: rouge_l}\n"
    )
    path.write_text(text)
    return load_space(path, "cpu")


def generative_metrics(rouge: float, e2e: float) -> dict:
    return {
        "exact_match": rouge / 2,
        "rouge_l": rouge,
        "rouge_l.lo": rouge - 0.05,
        "rouge_l.hi": rouge + 0.05,
        "chrf": rouge * 100,
        "bleu": rouge * 50,
        "nll": 2.0 - rouge,
        "perplexity": math.exp(2.0 - rouge),
        "e2e_ms.p50": e2e,
        "size_mb": 2.0,
        "collapsed": 0.0,
    }


SCORES = {0: [0.9, 0.5, 0.8, 0.7], 1: [0.4, 0.3, 0.5, 0.2]}  # rouge_l per example
PROMPTS = [f"<|user|>\nWhat is {i} + 2?<|end|>\n<|assistant|>\n" for i in range(4)]
ANSWERS = [str(i + 2) for i in range(4)]


def generative_run(space: Space, folder: Path, shift: float = 0.0) -> RunResults:
    """Two trials (rouge_l 0.725 and 0.35, plus `shift`) and a base at 0.1; trial 0 and the
    base left their generations."""
    trials = [
        trial(space, n, generative_metrics(sum(s) / 4 + shift, 3.0 + n), {"scores": {"rouge_l": s}})
        for n, s in SCORES.items()
    ]
    study = study_of(space, trials, generative_metrics(0.1, 3.0))
    predictions = [f"It is {a}" for a in ANSWERS]
    path = folder / "trials" / "0" / "generations.jsonl"
    write_rows(path, PROMPTS, ANSWERS, predictions, "rouge_l", SCORES[0])
    base = folder / "reference" / "generations.jsonl"
    write_rows(base, PROMPTS, ANSWERS, ["-2"] * 4, "rouge_l", [0.0] * 4)
    return RunResults.of(study, space, "cpu", folder.name, folder)


def test_a_generative_report_says_rouge_l_and_never_accuracy(write_space, tmp_path):
    space = generative_space(write_space)
    results = generative_run(space, tmp_path / "run")
    assert results.selection.chosen.number == 0
    outputs = write_report(results, results.folder)
    report = outputs.report_md.read_text()

    assert "accuracy" not in report.lower()
    assert "## Per label" not in report  # no labels to count
    assert ": rouge_l +62.5 points." in report  # 0.725 against the base's 0.1
    comparison = report.split("The selected trial and the untrained base")[1].split("\n\n")[1]
    assert comparison.splitlines()[0].startswith("| model | rouge_l | e2e_ms | exact_match |")
    section = report.split("## What the models said")[1].split("\n## ")[0]
    assert "The first 4 eval examples" in section
    assert "| example | who | text | rouge_l |" in section
    assert "| 2 | trial 0 (selected) | It is 3 | 0.5 |" in section
    assert "| 2 | untrained base | -2 | 0 |" in section
    assert "\\|user\\|> ↵ What is 1 + 2?" in section  # the prompt, one line, escaped
    html = outputs.report_html.read_text()
    assert "accuracy" not in html.lower() and "rouge_l" in html

    # The model card: the figures by their own names, and some of the model's answers.
    card = model_card(results, 0, results.selection.reason, [], results.records[0].metrics)
    assert "accuracy" not in card.lower()
    assert "| rouge_l | 0.725 [0.675, 0.775] |" in card
    examples = card.split("## Examples")[1]
    assert "| prompt | reference | prediction | rouge_l |" in examples
    assert "| 3 | It is 3 | 0.5 |" in examples


def test_compare_does_not_rank_runs_on_different_data(write_space, tmp_path):
    """The second run scores another eval split: its higher rouge_l is no win."""
    one = generative_run(generative_space(write_space, "a.yaml"), tmp_path / "a")
    other_space = generative_space(write_space, "b.yaml", {"split_seed": 1})
    other = generative_run(other_space, tmp_path / "b", shift=0.2)
    same = generative_run(generative_space(write_space, "c.yaml"), tmp_path / "c", shift=0.2)
    markdown = compare_runs([one, other], tmp_path / "compare").markdown.read_text()
    assert "best feasible rouge_l: not comparable (the runs score different data)" in markdown
    assert "best feasible e2e_ms.p50: a tie" in markdown  # latency still compares
    markdown = compare_runs([one, same], tmp_path / "compare2").markdown.read_text()
    assert "best feasible rouge_l: **c** wins by 0.2" in markdown
