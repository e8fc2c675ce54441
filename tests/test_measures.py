"""The arithmetic of the evaluators: label scores, classification metrics, latency statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from autotune.evaluators.accuracy import classification_metrics, log_softmax, sequence_scores
from autotune.evaluators.latency import summarize


def test_sequence_scores_by_hand():
    # Vocabulary of 3; row 0 has a 2-token prompt and continuation [2, 0].
    logits = np.zeros((1, 4, 3))
    logits[0, 1] = [0.0, 0.0, math.log(2)]  # predicts token 2 with p = 2/4
    logits[0, 2] = [math.log(3), 0.0, 0.0]  # predicts token 0 with p = 3/5
    (score,) = sequence_scores(logits, [2], [[2, 0]])
    assert score == pytest.approx(math.log(0.5) + math.log(0.6))


def test_log_softmax_is_normalised():
    values = log_softmax(np.array([[1.0, 2.0, 3.0]]))
    assert np.exp(values).sum() == pytest.approx(1.0)


def test_classification_metrics_by_hand():
    predictions = ["a", "a", "b", "b", "a"]
    references = ["a", "b", "b", "b", "c"]
    accuracy, macro_f1, per_label = classification_metrics(predictions, references, ["a", "b", "c"])
    assert accuracy == pytest.approx(3 / 5)
    assert per_label["a"]["precision"] == pytest.approx(1 / 3) and per_label["a"]["recall"] == 1.0
    assert per_label["b"]["precision"] == 1.0 and per_label["b"]["recall"] == pytest.approx(2 / 3)
    assert per_label["c"]["f1"] == 0.0
    assert macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_summarize():
    stats = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["p50"] == 3.0
    assert stats["mean"] == pytest.approx(22.0)
    assert stats["p90"] == pytest.approx(np.percentile([1, 2, 3, 4, 100], 90))
    assert stats["cv"] == pytest.approx(stats["std"] / stats["mean"])
