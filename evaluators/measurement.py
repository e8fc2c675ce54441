"""One candidate's measurements, as the study records them and `autotune bench` reports them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotune.evaluators.accuracy import AccuracyResult, accuracy_of
from autotune.evaluators.environment import describe
from autotune.evaluators.examples import Example
from autotune.evaluators.footprint import folder_size_mb
from autotune.evaluators.latency import LatencyResult, latency_of
from autotune.evaluators.memory import track_memory
from autotune.evaluators.runtime import load_model
from autotune.evaluators.stats import quantile_interval, summarize
from autotune.spaces import LatencySection


def flat_metrics(
    accuracy: AccuracyResult | None,
    latency: LatencyResult,
    model_dir: Path,
    labels: list[str] | None = None,
) -> dict[str, float]:
    """Metrics by the names a space uses: accuracy, macro_f1, size_mb, peak_mem_mb,
    model_mem_mb, gpu_mem_mb (cuda) and `<latency figure>.<statistic>`; with each the ends of
    its 95% interval where one is known (`accuracy.lo`, `accuracy.hi`, `decode_ms.p50.lo`, ...:
    evaluators/stats.py); and how trustworthy the latency is: `noise.attempts` (passes of the
    repeats), `noise.flagged` (1: still noisy after the retries) and `noise.other_cores` (cores
    other processes kept busy during the kept pass)."""
    metrics: dict[str, float] = {
        "size_mb": folder_size_mb(model_dir),
        "peak_mem_mb": latency.memory.peak_mem_mb,
        "model_mem_mb": latency.memory.model_mem_mb,
    }
    if latency.memory.gpu_peak_mb is not None:
        metrics["gpu_mem_mb"] = latency.memory.gpu_peak_mb
    if accuracy is not None:
        metrics["accuracy"] = accuracy.accuracy
        if accuracy.macro_f1 is not None:
            metrics["macro_f1"] = accuracy.macro_f1
        for name, (low, high) in accuracy.intervals(labels).items():
            metrics[f"{name}.lo"], metrics[f"{name}.hi"] = low, high
    metrics["noise.attempts"] = float(len(latency.attempts))
    metrics["noise.flagged"] = float(bool(latency.noisy))
    if latency.attempts:
        metrics["noise.other_cores"] = latency.attempts[latency.kept].machine.other_cores
    for name, stats in latency.stats.items():
        metrics.update({f"{name}.{stat}": value for stat, value in stats.items()})
    metrics.update(latency_intervals(latency.samples))
    return metrics


def latency_metrics(samples: dict[str, list[float]]) -> dict[str, float]:
    """`<figure>.<stat>` and the interval ends of raw latency repeats, named as a measurement
    names them (the confirmation round's figures)."""
    metrics: dict[str, float] = {}
    for name, values in samples.items():
        metrics.update({f"{name}.{stat}": value for stat, value in summarize(values).items()})
    return {**metrics, **latency_intervals(samples)}


def latency_intervals(samples: dict[str, list[float]]) -> dict[str, float]:
    """The ends of each latency figure's median and p90 interval (`decode_ms.p50.lo`, ...),
    where the repeats are enough for one."""
    ends: dict[str, float] = {}
    for name, values in samples.items():
        for stat, q in INTERVAL_QUANTILES.items():
            low, high = quantile_interval(values, q)
            if math.isfinite(low) and math.isfinite(high):
                ends[f"{name}.{stat}.lo"], ends[f"{name}.{stat}.hi"] = low, high
    return ends


# The latency statistics that get a distribution-free interval (quantile of the repeats).
INTERVAL_QUANTILES = {"p50": 0.5, "p90": 0.9}


@dataclass
class Benchmark:
    """Everything `autotune bench` measured on one model folder, and where."""

    model_dir: Path
    target: str
    metrics: dict[str, float]
    latency: LatencyResult
    accuracy: AccuracyResult | None
    seconds: dict[str, float]
    environment: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "model_dir": str(self.model_dir),
            "target": self.target,
            "metrics": self.metrics,
            "latency": self.latency.to_json(),
            "accuracy": self.accuracy.to_json() if self.accuracy else None,
            "seconds": self.seconds,
            "environment": self.environment,
        }


def benchmark(
    model_dir: Path,
    target: str,
    settings: LatencySection,
    examples: list[Example] | None = None,
    labels: list[str] | None = None,
    metric: str = "exact_match",
    environment: dict[str, Any] | None = None,
    label_texts: dict[str, str] | None = None,
) -> Benchmark:
    """Latency (always) and accuracy (when examples are given) of an ORT-genai model folder;
    `environment` is the machine's `describe(target)` when the caller already has it;
    `label_texts` are the labels as the completions render them (candidates/data.py).

    One load of the model and one encoding of the eval prompts serve both: latency first (its
    task requests are the eval prompts), then accuracy. Memory figures cover the load and both.
    """
    seconds: dict[str, float] = {}
    accuracy = None
    prompts = [e.prompt for e in examples] if examples else []
    with track_memory(target) as memory:
        loaded = load_model(model_dir, target, settings.threads)
        seconds["load"] = loaded.load_s
        start = time.perf_counter()
        encoded = [loaded.encode(prompt) for prompt in prompts]
        latency = latency_of(loaded, prompts, settings, memory, encoded)
        seconds["latency"] = time.perf_counter() - start
        if examples:
            start = time.perf_counter()
            accuracy = accuracy_of(
                loaded, examples, labels, metric=metric, label_texts=label_texts, prompts=encoded
            )
            seconds["accuracy"] = time.perf_counter() - start
        del loaded
    return Benchmark(
        model_dir=Path(model_dir),
        target=target,
        metrics=flat_metrics(accuracy, latency, model_dir, labels),
        latency=latency,
        accuracy=accuracy,
        seconds=seconds,
        environment=environment or describe(target),
    )
