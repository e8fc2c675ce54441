"""The arithmetic of the evaluators: label scores, the shipped metric modules, latency
statistics, memory tracking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotune.evaluators.accuracy import load_metric
from autotune.evaluators.label_scoring import log_softmax, sequence_scores
from autotune.evaluators.memory import track_memory
from autotune.evaluators.stats import median_halfwidth, summarize


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


def test_classification_module_by_hand():
    predictions = ["a", "a", "b", "b", "a"]
    references = ["a", "b", "b", "b", "c"]
    figures = load_metric("classification").compute(
        predictions=predictions, references=references, labels=["a", "b", "c"]
    )
    accuracy, macro_f1, per_label = figures["accuracy"], figures["macro_f1"], figures["per_label"]
    assert accuracy == pytest.approx(3 / 5)
    assert per_label["a"]["precision"] == pytest.approx(1 / 3) and per_label["a"]["recall"] == 1.0
    assert per_label["b"]["precision"] == 1.0 and per_label["b"]["recall"] == pytest.approx(2 / 3)
    assert per_label["c"]["f1"] == 0.0
    assert macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # Rows: reference a, b, c; columns: predicted a, b, c.
    assert figures["confusion_matrix"]["matrix"] == [[1, 0, 0], [1, 2, 0], [1, 0, 0]]


def test_exact_match_module_strips_spaces():
    figures = load_metric("exact_match").compute(
        predictions=[" yes", "no ", "maybe"], references=["yes", "no", "never"]
    )
    assert figures == {"exact_match": pytest.approx(2 / 3)}


def test_summarize():
    stats = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert stats["p50"] == 3.0
    assert stats["mean"] == pytest.approx(22.0)
    assert stats["p90"] == pytest.approx(np.percentile([1, 2, 3, 4, 100], 90))
    assert stats["cv"] == pytest.approx(stats["std"] / stats["mean"])


def test_median_halfwidth_by_hand():
    # n = 100: the interval runs from the 41st to the 60th value (ranks 50 -/+ 10, 0-based 40, 59).
    samples = [float(v) for v in range(1, 101)]
    assert median_halfwidth(samples) == pytest.approx(9.5 / 50.5)
    assert median_halfwidth([5.0] * 50) == 0.0
    assert median_halfwidth([1.0, 2.0, 3.0]) == math.inf  # too few for an interval


def test_track_memory_sees_an_allocation():
    with track_memory("cpu") as memory:
        block = np.ones(200 * 2**20 // 8)  # 200 MiB, written so that it is resident
        del block
    assert memory.model_mem_mb > 150
    assert memory.peak_mem_mb >= memory.model_mem_mb
    with track_memory("cpu") as quiet:
        pass
    assert quiet.model_mem_mb < 50  # the earlier peak was reset, not carried over


def test_wilson_intervals_hold_known_values_and_stay_inside_0_1():
    from autotune.evaluators.stats import wilson_interval

    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(152, 256)  # wider on fewer examples
    assert high - low > wilson_interval(608, 1024)[1] - wilson_interval(608, 1024)[0]


def test_quantile_intervals_are_order_statistics():
    from autotune.evaluators.stats import quantile_interval

    samples = [float(v) for v in range(100, 0, -1)]  # order does not matter
    assert quantile_interval(samples, 0.5) == (40.0, 61.0)  # ranks 50 -/+ 1.96 * 5
    low, high = quantile_interval(samples, 0.9)
    assert 80 <= low < 90 < high <= 97
    assert quantile_interval([1.0, 2.0, 3.0], 0.5) == (-math.inf, math.inf)  # too few


def test_bootstrap_f1_interval_brackets_the_estimate():
    from autotune.evaluators.stats import bootstrap_macro_f1, macro_f1_of

    labels = ["joy", "fear", "sadness"]
    references = [labels[i % 3] for i in range(90)]
    assert bootstrap_macro_f1(references, references, labels) == (1.0, 1.0)
    predictions = [r if i % 4 else "joy" for i, r in enumerate(references)]
    low, high = bootstrap_macro_f1(predictions, references, labels)
    index = {label: i for i, label in enumerate(labels)}
    point = macro_f1_of(
        np.array([index[p] for p in predictions]), np.array([index[r] for r in references]), 3
    )
    assert low < point < high and high - low < 0.3
    assert bootstrap_macro_f1(predictions, references, labels) == (low, high)  # seeded
