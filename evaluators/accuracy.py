"""Accuracy of an exported model on the eval split, measured with onnxruntime-genai.

Classification spaces (labels given) use label scoring: each (prompt, label) pair is one
sequence `prompt + label tokens + EOS`; the logits of one forward pass over a right-padded batch
of such sequences give the log-probability of every label, and the prediction is the most likely
label. Spaces without labels use greedy generation and exact match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from autotune.candidates.data import Example
from autotune.evaluators.runtime import open_model, special_ids


@dataclass(frozen=True)
class AccuracyResult:
    """Predictions on the eval split and the metrics computed from them."""

    accuracy: float
    macro_f1: float | None
    predictions: list[str]
    references: list[str]
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)


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


def classification_metrics(
    predictions: list[str], references: list[str], labels: list[str]
) -> tuple[float, float, dict[str, dict[str, float]]]:
    """Accuracy, macro-F1 and per-label precision/recall/F1."""
    accuracy = sum(p == r for p, r in zip(predictions, references, strict=True)) / len(references)
    per_label: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(p == label and r == label for p, r in zip(predictions, references, strict=True))
        predicted = sum(p == label for p in predictions)
        actual = sum(r == label for r in references)
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    macro_f1 = sum(v["f1"] for v in per_label.values()) / len(labels)
    return accuracy, macro_f1, per_label


def score_labels(
    model,
    tokenizer,
    examples: list[Example],
    labels: list[str],
    eos: int,
    pad: int,
    batch_size: int,
) -> list[str]:
    """The most likely label for each example, by label scoring on batched forward passes."""
    import onnxruntime_genai as og

    label_tokens = [list(tokenizer.encode(label)) + [eos] for label in labels]
    rows = []  # (example index, label index, prompt tokens)
    for i, example in enumerate(examples):
        prompt = list(tokenizer.encode(example.prompt))
        rows.extend((i, j, prompt) for j in range(len(labels)))
    scores = np.full((len(examples), len(labels)), -math.inf)
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        sequences = [prompt + label_tokens[j] for _, j, prompt in batch]
        width = max(len(s) for s in sequences)
        ids = np.full((len(batch), width), pad, dtype=np.int32)
        for r, sequence in enumerate(sequences):
            ids[r, : len(sequence)] = sequence
        params = og.GeneratorParams(model)
        params.set_search_options(batch_size=len(batch), max_length=width + 1, do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(ids)
        logits = np.asarray(generator.get_output("logits"))
        del generator
        batch_scores = sequence_scores(
            logits, [len(p) for _, _, p in batch], [label_tokens[j] for _, j, _ in batch]
        )
        for (i, j, _), score in zip(batch, batch_scores, strict=True):
            scores[i, j] = score
    return [labels[j] for j in scores.argmax(axis=1)]


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
    threads: int | None = None,
    batch_size: int = 16,
) -> AccuracyResult:
    """Accuracy of the ONNX model in `model_dir` on `examples`."""
    import onnxruntime_genai as og

    model = open_model(model_dir, target, threads)
    tokenizer = og.Tokenizer(model)
    references = [e.completion for e in examples]
    if labels:
        eos, pad = special_ids(model_dir)
        predictions = score_labels(model, tokenizer, examples, labels, eos, pad, batch_size)
        accuracy, macro_f1, per_label = classification_metrics(predictions, references, labels)
        return AccuracyResult(accuracy, macro_f1, predictions, references, per_label)
    longest = max(len(tokenizer.encode(r)) for r in references)
    predictions = generate_greedy(model, tokenizer, examples, longest + 2)
    accuracy = sum(p == r.strip() for p, r in zip(predictions, references, strict=True))
    return AccuracyResult(accuracy / len(examples), None, predictions, references)
