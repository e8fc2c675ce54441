"""Summary statistics of repeated measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def summarize(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/std/cv of a list of samples (std with ddof=1, cv = std / mean)."""
    values = np.asarray(samples, dtype=np.float64)
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
        "p99": float(np.percentile(values, 99)),
        "mean": mean,
        "std": std,
        "cv": std / mean if mean else 0.0,
    }


def median_halfwidth(samples: list[float], z: float = 1.96) -> float:
    """Relative half-width of a distribution-free 95% confidence interval of the median.

    The interval runs between the order statistics of rank n/2 -/+ z*sqrt(n)/2 (the normal
    approximation to the binomial); the result is the larger side over the median, so 0.02 means
    the median is known to within 2%. Infinite when there are too few samples for an interval.
    """
    n = len(samples)
    offset = math.ceil(z * math.sqrt(n) / 2)
    low, high = n // 2 - offset, (n - 1) // 2 + offset
    if n < 6 or low < 0 or high >= n:
        return math.inf
    ordered = sorted(samples)
    median = float(np.median(ordered))
    if median == 0:
        return math.inf
    return max(median - ordered[low], ordered[high] - median) / abs(median)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion: sound at 0 and 1 and on small n, where
    the normal approximation is not."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def quantile_interval(samples: list[float], q: float, z: float = 1.96) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the `q` quantile (0.5: the median): the
    order statistics at ranks n*q -/+ z*sqrt(n*q*(1-q)) (the normal approximation to the
    binomial). With too few samples for an interval the ends are -inf / inf."""
    n = len(samples)
    spread = z * math.sqrt(n * q * (1 - q))
    low, high = math.floor(n * q - spread) - 1, math.ceil(n * q + spread)  # 0-based ranks
    ordered = sorted(samples)
    return (
        ordered[low] if 0 <= low < n else -math.inf,
        ordered[high] if 0 <= high < n else math.inf,
    )


def macro_f1_of(predicted: np.ndarray, actual: np.ndarray, classes: int) -> float:
    """Macro-averaged F1 of integer labels (a class absent from both counts as F1 0)."""
    scores = []
    for label in range(classes):
        tp = np.sum((predicted == label) & (actual == label))
        fp = np.sum((predicted == label) & (actual != label))
        fn = np.sum((predicted != label) & (actual == label))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def bootstrap_macro_f1(
    predictions: list[str], references: list[str], labels: list[str], rounds: int = 1000
) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of macro-F1 over the eval examples (seeded: the
    same predictions always get the same interval)."""
    index = {label: i for i, label in enumerate(labels)}
    predicted = np.array([index.get(p, -1) for p in predictions])
    actual = np.array([index.get(r, -1) for r in references])
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(actual), size=(rounds, len(actual)))
    scores = [macro_f1_of(predicted[d], actual[d], len(labels)) for d in draws]
    return (float(np.percentile(scores, 2.5)), float(np.percentile(scores, 97.5)))


def bootstrap_mean_interval(values: Sequence[float], rounds: int = 1000) -> tuple[float, float]:
    """A 95% percentile-bootstrap interval of the mean of per-example scores, seeded (the same
    scores always get the same interval) and drawn in one numpy step; (nan, nan) when empty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(0)
    means = data[rng.integers(0, data.size, size=(rounds, data.size))].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))
