"""Accuracy of an exported model on the eval split, measured with onnxruntime-genai.

Classification spaces (labels given) use label scoring: the prediction is the label whose
`label tokens + EOS` are most likely after the prompt, computed from the model's logits. Spaces
without labels use greedy generation, scored per example by the shipped text metrics (exact
match, ROUGE-L, chrF, BLEU: evaluators/text_metrics.py) and by a custom `evaluate` module when
the space names one.

With a `LikelihoodMeter` (evaluators/likelihood.py) the example's one prompt pass becomes a
teacher-forced pass over prompt + reference completion + EOS: its logits score the reference's
likelihood and serve label scoring (or start the generation) as the prompt pass did.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotune.evaluators.examples import Example
from autotune.evaluators.generation import generate_greedy
from autotune.evaluators.label_scoring import score_labels
from autotune.evaluators.likelihood import (
    LikelihoodMeter,
)
from autotune.evaluators.runtime import LoadedModel, load_model, special_ids
from autotune.evaluators.stats import bootstrap_macro_f1, bootstrap_mean_interval, wilson_interval
from autotune.evaluators.text_metrics import text_scores


@dataclass(frozen=True)
class AccuracyResult:
    """Predictions on the eval split and their scores.

    `accuracy` is the headline share of right answers: label accuracy for classification
    spaces, normalised exact match for generations. `scores` holds each figure's per-example
    scores in eval order (classification: "accuracy" 0/1; generations: every text metric, and a
    custom module's figures under their own names), the evidence of paired comparisons.
    `figures` are the metric modules' other outputs (per-label figures, a confusion matrix; a
    custom module's corpus-level figures).
    """

    accuracy: float
    macro_f1: float | None
    predictions: list[str]
    references: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    exact: list[bool] | None = None  # generations: normalised exact match per example

    @property
    def correct(self) -> list[bool]:
        """Per eval example, in order: whether the prediction was right (for paired
        comparisons of two candidates on the same examples): the label, or the generation
        equal to the reference once both are normalised."""
        if self.exact is not None:
            return self.exact
        return [p == r for p, r in zip(self.predictions, self.references, strict=True)]

    def means(self) -> dict[str, float]:
        """Each figure by its name: accuracy and macro_f1 for classification; for generations
        each per-example score's mean, and a custom module's own (corpus) figures."""
        if self.macro_f1 is not None:
            return {"accuracy": self.accuracy, "macro_f1": self.macro_f1}
        found = {name: float(np.mean(values)) for name, values in self.scores.items() if values}
        found.update({k: float(v) for k, v in self.figures.items() if is_number(v)})
        return found

    def intervals(self, labels: list[str] | None) -> dict[str, tuple[float, float]]:
        """95% intervals: Wilson for accuracy, a bootstrap over the examples for macro-F1 and
        for every figure that is the mean of its per-example scores (a custom module's corpus
        figure that is not such a mean gets none)."""
        if self.macro_f1 is not None:
            found = {"accuracy": wilson_interval(sum(self.correct), len(self.correct))}
            if labels:
                found["macro_f1"] = bootstrap_macro_f1(self.predictions, self.references, labels)
            return found
        found = {}
        for name, value in self.means().items():
            values = self.scores.get(name)
            if values and math.isclose(value, float(np.mean(values)), rel_tol=1e-9, abs_tol=1e-12):
                found[name] = bootstrap_mean_interval(values)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            **self.figures,
            "correct": "".join("1" if c else "0" for c in self.correct),
            "predictions": self.predictions,
            "references": self.references,
            "scores": self.scores,
        }


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


SHIPPED_METRICS = Path(__file__).parent / "metric_modules"


def metric_location(name_or_path: str, root: Path = Path(".")) -> Path:
    """The folder of an `evaluate` metric module: shipped with autotune, or local (from `root`)."""
    shipped = SHIPPED_METRICS / name_or_path
    return shipped if shipped.is_dir() else (root / name_or_path).resolve()


@functools.cache
def load_metric(name_or_path: str):
    """An `evaluate` metric module, loaded from its folder (never fetched from a hub)."""
    import evaluate

    return evaluate.load(str(metric_location(name_or_path)))


def custom_module(metric: str) -> Path | None:
    """The folder of the space's own `evaluate` module, None for the shipped metrics (a shipped
    module's name or folder, or a text metric's name)."""
    location = metric_location(metric)
    if location.parent.resolve() == SHIPPED_METRICS.resolve() or not location.is_dir():
        return None
    return location


def measure_accuracy(
    model_dir: Path,
    target: str,
    examples: list[Example],
    labels: list[str] | None,
    *,
    metric: str = "exact_match",
    threads: int | None = None,
    label_texts: Mapping[str, str] | None = None,
) -> AccuracyResult:
    """Accuracy of the ONNX model in `model_dir` on `examples` (`accuracy_of` a fresh load)."""
    loaded = load_model(model_dir, target, threads)
    return accuracy_of(loaded, examples, labels, metric=metric, label_texts=label_texts)


def accuracy_of(
    loaded: LoadedModel,
    examples: list[Example],
    labels: list[str] | None,
    *,
    metric: str = "exact_match",
    label_texts: Mapping[str, str] | None = None,
    prompts: Sequence[Sequence[int]] | None = None,
    meter: LikelihoodMeter | None = None,
) -> AccuracyResult:
    """Accuracy of a loaded model on `examples`.

    With labels: label scoring and the shipped `classification` metric; `label_texts` (the
    dataset's) gives each label's completion as trained on, else the labels are scored as
    written. Without: greedy generation scored by the text metrics and, when `metric` is a
    module folder of the space's own, by it too. `prompts`: the examples' prompts already
    encoded. `meter` gathers the reference's likelihood on the way (see the module's doc).
    """
    model, tokenizer = loaded.model, loaded.tokenizer
    references = [e.completion.strip() for e in examples]
    eos, _ = special_ids(loaded.path)
    if labels:
        predictions = score_labels(
            model, tokenizer, examples, labels, eos, label_texts, prompts, meter
        )
        return classification_result(predictions, references, labels)
    longest = max(len(tokenizer.encode(r)) for r in references)
    predictions = generate_greedy(model, tokenizer, examples, longest + 2, prompts, meter, eos)
    return generation_result(predictions, references, metric)


def generation_result(predictions: list[str], references: list[str], metric: str) -> AccuracyResult:
    """Generations scored per example by every text metric and, when `metric` is a module of
    the space's own, by it: its figures on all examples keep their names (a name it shares with
    a text metric replaces that one), and it scores each example alone for per-example scores."""
    scores = text_scores(predictions, references)
    exact = [s == 1.0 for s in scores["exact_match"]]  # before a custom module's figures
    figures: dict[str, Any] = {}
    module = custom_module(metric)
    if module is not None:
        scorer = load_metric(str(module))
        figures = dict(scorer.compute(predictions=predictions, references=references))
        each = [
            scorer.compute(predictions=[p], references=[r])
            for p, r in zip(predictions, references, strict=True)
        ]
        for name, value in figures.items():
            if is_number(value):
                scores[name] = [float(one[name]) for one in each]
    accuracy = sum(exact) / len(exact) if exact else 0.0
    return AccuracyResult(accuracy, None, predictions, references, figures, scores, exact)


def classification_result(
    predictions: list[str], references: list[str], labels: list[str]
) -> AccuracyResult:
    """Label-scoring predictions scored by the shipped `classification` metric (also for
    predictions gathered a slice at a time, as a raced measurement gathers them)."""
    figures = load_metric("classification").compute(
        predictions=predictions, references=references, labels=labels
    )
    accuracy, macro_f1 = figures.pop("accuracy"), figures.pop("macro_f1")
    right = [float(p == r) for p, r in zip(predictions, references, strict=True)]
    return AccuracyResult(accuracy, macro_f1, predictions, references, figures, {"accuracy": right})
