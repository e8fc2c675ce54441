"""Summary statistics of repeated measurements."""

from __future__ import annotations

import math

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
