"""Accuracy of an exported model on the eval split, measured with onnxruntime-genai.

Classification spaces (labels given) use label scoring: the prediction is the label whose
`label tokens + EOS` are most likely after the prompt, computed from the model's logits. Spaces
without labels use greedy generation, scored by an `evaluate` metric (exact match by default).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotune.evaluators.examples import Example
from autotune.evaluators.runtime import open_model, special_ids
from autotune.evaluators.stats import bootstrap_macro_f1, wilson_interval


@dataclass(frozen=True)
class AccuracyResult:
    """Predictions on the eval split and the metric module's figures on them.

    `accuracy` is the headline figure: accuracy for classification spaces, otherwise the first
    figure of the space's metric (exact match by default).
    """

    accuracy: float
    macro_f1: float | None
    predictions: list[str]
    references: list[str]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> list[bool]:
        """Per eval example, in order: whether the prediction was right (for paired
        comparisons of two candidates on the same examples)."""
        return [p == r for p, r in zip(self.predictions, self.references, strict=True)]

    def intervals(self, labels: list[str] | None) -> dict[str, tuple[float, float]]:
        """95% intervals: Wilson for accuracy, a bootstrap over the examples for macro-F1
        (classification spaces only: a generated metric need not be a proportion)."""
        if not labels:
            return {}
        found = {"accuracy": wilson_interval(sum(self.correct), len(self.correct))}
        if self.macro_f1 is not None:
            found["macro_f1"] = bootstrap_macro_f1(self.predictions, self.references, labels)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            **self.figures,
            "correct": "".join("1" if c else "0" for c in self.correct),
        }


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sequence_scores(
    logits: np.ndarray, prompt_lengths: Sequence[int], continuations: Sequence[Sequence[int]]
) -> list[float]:
    """Sum of log p(continuation token | everything before it) for each row of a batch.

    `logits[b, t]` predicts token `t + 1` of row `b`, whose first `prompt_lengths[b]` tokens are
    the prompt and whose next tokens are `continuations[b]`.
    """
    scores = []
    for row, (start, tokens) in enumerate(zip(prompt_lengths, continuations, strict=True)):
        positions = np.arange(start - 1, start - 1 + len(tokens))
        log_probs = log_softmax(logits[row, positions].astype(np.float64))
        scores.append(float(log_probs[np.arange(len(tokens)), list(tokens)].sum()))
    return scores


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


def score_labels(
    model,
    tokenizer,
    examples: list[Example],
    labels: list[str],
    eos: int,
    texts: Mapping[str, str] | None = None,
) -> list[str]:
    """The most likely label for each example, by label scoring.

    The prompt goes through the model once; each label is then scored from the same key-value
    cache: its first token from the prompt's last logits, the rest of `label tokens + EOS` by
    appending the label and rewinding to the end of the prompt before the next one. `texts`
    maps a label to the completion training saw for it (" joy" for a `completion_template` of
    " {tone}"), whose tokens are the ones to score; the prediction is still the label.
    """
    texts = texts or {}
    label_tokens = [
        [int(t) for t in tokenizer.encode(texts.get(label, label))] + [eos] for label in labels
    ]
    predictions = []
    for example in examples:
        prompt = [int(t) for t in tokenizer.encode(example.prompt)]
        scores = label_scores(model, prompt, label_tokens)
        predictions.append(labels[int(np.argmax(scores))])
    return predictions


def label_scores(model, prompt: list[int], label_tokens: list[list[int]]) -> list[float]:
    """log p(tokens | prompt) for each token list of `label_tokens`, from one prompt pass."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    longest = max(len(tokens) for tokens in label_tokens)
    params.set_search_options(max_length=len(prompt) + longest, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    after_prompt = np.asarray(generator.get_output("logits"))[0, -1:]
    scores = []
    for tokens in label_tokens:
        logits = after_prompt
        if len(tokens) > 1:
            generator.rewind_to(len(prompt))
            generator.append_tokens(tokens[:-1])
            appended = np.asarray(generator.get_output("logits"))[0]
            if len(appended) != len(tokens) - 1:  # a pruned LM head: the last position only
                generator.rewind_to(len(prompt))
                rows = []
                for token in tokens[:-1]:
                    generator.append_tokens([token])
                    rows.append(np.asarray(generator.get_output("logits"))[0, -1])
                appended = np.stack(rows)
            logits = np.concatenate([after_prompt, appended])
        scores.append(sequence_scores(logits[None], [1], [tokens])[0])
    return scores


def generate_greedy(model, tokenizer, examples: list[Example], max_new_tokens: int) -> list[str]:
    """Greedy completions, one example at a time, stopped at EOS or `max_new_tokens`."""
    import onnxruntime_genai as og

    outputs = []
    for example in examples:
        prompt = list(tokenizer.encode(example.prompt))
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=len(prompt) + max_new_tokens)
        generator = og.Generator(model, params)
        generator.append_tokens(prompt)
        new = []
        while not generator.is_done():
            generator.generate_next_token()
            new.append(int(generator.get_next_tokens()[0]))
        outputs.append(tokenizer.decode(new).strip())
    return outputs


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
    """Accuracy of the ONNX model in `model_dir` on `examples`.

    With labels: label scoring and the shipped `classification` metric; `label_texts` (the
    dataset's) gives each label's completion as trained on, else the labels are scored as
    written. Without: greedy generation scored by `metric` (a shipped module's name or a local
    module folder).
    """
    import onnxruntime_genai as og

    model = open_model(model_dir, target, threads)
    tokenizer = og.Tokenizer(model)
    references = [e.completion.strip() for e in examples]
    if labels:
        eos, _ = special_ids(model_dir)
        predictions = score_labels(model, tokenizer, examples, labels, eos, label_texts)
        figures = load_metric("classification").compute(
            predictions=predictions, references=references, labels=labels
        )
        accuracy, macro_f1 = figures.pop("accuracy"), figures.pop("macro_f1")
        return AccuracyResult(accuracy, macro_f1, predictions, references, figures)
    longest = max(len(tokenizer.encode(r)) for r in references)
    predictions = generate_greedy(model, tokenizer, examples, longest + 2)
    figures = load_metric(metric).compute(predictions=predictions, references=references)
    headline = next(iter(figures.values()))
    return AccuracyResult(float(headline), None, predictions, references, figures)
