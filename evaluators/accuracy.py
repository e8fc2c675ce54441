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
from autotune.evaluators.runtime import LoadedModel, load_model, special_ids
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
    prompts: Sequence[Sequence[int]] | None = None,
) -> list[str]:
    """The most likely label for each example, by label scoring (`best_label`).

    `texts` maps a label to the completion training saw for it (" joy" for a
    `completion_template` of " {tone}"), whose tokens are the ones to score; the prediction is
    still the label. `prompts` are the examples' prompts already encoded, when the caller has them.
    """
    label_tokens = encode_labels(tokenizer, labels, eos, texts)
    if prompts is None:
        prompts = [[int(t) for t in tokenizer.encode(e.prompt)] for e in examples]
    return [labels[best_label(model, list(prompt), label_tokens)] for prompt in prompts]


def encode_labels(
    tokenizer, labels: list[str], eos: int, texts: Mapping[str, str] | None = None
) -> list[list[int]]:
    """Each label's tokens as scored: its completion text's tokens, then EOS."""
    texts = texts or {}
    return [[int(t) for t in tokenizer.encode(texts.get(label, label))] + [eos] for label in labels]


class PromptScorer:
    """One prompt's pass through the model, then token lists scored from its key-value cache.

    A list's first token is scored from the prompt's last logits; the rest by appending the list
    (but its last token) and rewinding to the end of the prompt before the next one.
    """

    def __init__(self, model, prompt: list[int], longest: int):
        import onnxruntime_genai as og

        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(prompt) + longest, do_sample=False)
        self.generator = og.Generator(model, params)
        self.generator.append_tokens(prompt)
        self.prompt_length = len(prompt)
        self.after_prompt = np.asarray(self.generator.get_output("logits"))[0, -1:]
        self.first = log_softmax(self.after_prompt[0].astype(np.float64))
        self.appended = False

    def score(self, tokens: list[int]) -> float:
        """log p(tokens | prompt)."""
        logits = self.after_prompt
        if len(tokens) > 1:
            generator = self.generator
            if self.appended:
                generator.rewind_to(self.prompt_length)
            generator.append_tokens(tokens[:-1])
            self.appended = True
            appended = np.asarray(generator.get_output("logits"))[0]
            if len(appended) != len(tokens) - 1:  # a pruned LM head: the last position only
                generator.rewind_to(self.prompt_length)
                rows = []
                for token in tokens[:-1]:
                    generator.append_tokens([token])
                    rows.append(np.asarray(generator.get_output("logits"))[0, -1])
                appended = np.stack(rows)
            logits = np.concatenate([self.after_prompt, appended])
        return sequence_scores(logits[None], [1], [tokens])[0]


def label_scores(model, prompt: list[int], label_tokens: list[list[int]]) -> list[float]:
    """log p(tokens | prompt) for each token list of `label_tokens`, from one prompt pass."""
    scorer = PromptScorer(model, prompt, max(len(tokens) for tokens in label_tokens))
    return [scorer.score(tokens) for tokens in label_tokens]


def best_label(model, prompt: list[int], label_tokens: list[list[int]]) -> int:
    """The index of the highest `label_scores` entry (the first on a tie), scoring as few labels
    in full as it can.

    A label's score is its first token's log-probability plus terms that are never positive, so
    once one label's full score is known, no label whose first token alone scores lower can beat
    it. Labels are tried in order of their first token's score; on a model trained for the task
    the first usually settles it, and the example costs about one prompt pass.
    """
    scorer = PromptScorer(model, prompt, max(len(tokens) for tokens in label_tokens))
    firsts = [float(scorer.first[tokens[0]]) for tokens in label_tokens]
    best, best_score = -1, -np.inf
    for index in sorted(range(len(label_tokens)), key=lambda i: (-firsts[i], i)):
        if firsts[index] < best_score:
            break  # this label and every later one cannot win
        score = scorer.score(label_tokens[index])
        if score > best_score or (score == best_score and index < best):
            best, best_score = index, score
    return best


def generate_greedy(
    model,
    tokenizer,
    examples: list[Example],
    max_new_tokens: int,
    prompts: Sequence[Sequence[int]] | None = None,
) -> list[str]:
    """Greedy completions, one example at a time, stopped at EOS or `max_new_tokens`."""
    import onnxruntime_genai as og

    if prompts is None:
        prompts = [[int(t) for t in tokenizer.encode(e.prompt)] for e in examples]
    outputs = []
    for prompt in prompts:
        prompt = list(prompt)
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
) -> AccuracyResult:
    """Accuracy of a loaded model on `examples`.

    With labels: label scoring and the shipped `classification` metric; `label_texts` (the
    dataset's) gives each label's completion as trained on, else the labels are scored as
    written. Without: greedy generation scored by `metric` (a shipped module's name or a local
    module folder). `prompts`: the examples' prompts already encoded.
    """
    model, tokenizer = loaded.model, loaded.tokenizer
    references = [e.completion.strip() for e in examples]
    if labels:
        eos, _ = special_ids(loaded.path)
        predictions = score_labels(model, tokenizer, examples, labels, eos, label_texts, prompts)
        return classification_result(predictions, references, labels)
    longest = max(len(tokenizer.encode(r)) for r in references)
    predictions = generate_greedy(model, tokenizer, examples, longest + 2, prompts)
    figures = load_metric(metric).compute(predictions=predictions, references=references)
    headline = next(iter(figures.values()))
    return AccuracyResult(float(headline), None, predictions, references, figures)


def classification_result(
    predictions: list[str], references: list[str], labels: list[str]
) -> AccuracyResult:
    """Label-scoring predictions scored by the shipped `classification` metric (also for
    predictions gathered a slice at a time, as a raced measurement gathers them)."""
    figures = load_metric("classification").compute(
        predictions=predictions, references=references, labels=labels
    )
    accuracy, macro_f1 = figures.pop("accuracy"), figures.pop("macro_f1")
    return AccuracyResult(accuracy, macro_f1, predictions, references, figures)
