"""One candidate's measurements, as the study records them and `autotune bench` reports them.

A measurement may be raced (search/racing.py): label scoring on growing prefixes of the eval
split, with a rule that may stop it after one. A stopped measurement is partial: its accuracy
covers the prefix only and its metrics name it `partial_accuracy`, so no reader takes it for
the whole split's. Its likelihood lists cover the same prefix; its metrics hold no nll, kl,
top1_agree or collapsed, and it keeps no TopK (a twin must cover the whole split).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autotune.evaluators.accuracy import AccuracyResult, accuracy_of, classification_result
from autotune.evaluators.collapse import Collapse, collapse_of
from autotune.evaluators.environment import describe
from autotune.evaluators.examples import Example
from autotune.evaluators.footprint import folder_size_mb
from autotune.evaluators.label_scoring import score_labels
from autotune.evaluators.latency import LatencyResult, latency_of
from autotune.evaluators.likelihood import Likelihood, LikelihoodMeter, TopK, perplexity_of
from autotune.evaluators.memory import track_memory
from autotune.evaluators.runtime import LoadedModel, load_model, special_ids
from autotune.evaluators.stats import bootstrap_mean_interval, quantile_interval, summarize
from autotune.spaces import LatencySection


def flat_metrics(
    accuracy: AccuracyResult | None,
    latency: LatencyResult,
    model_dir: Path,
    labels: list[str] | None = None,
    likelihood: Likelihood | None = None,
    collapse: Collapse | None = None,
) -> dict[str, float]:
    """Metrics by the names a space uses: the quality figures (accuracy and macro_f1 for
    classification; exact_match, rouge_l, chrf, bleu and a custom module's figures for
    generations; nll, perplexity, and with a twin kl and top1_agree; collapsed), size_mb,
    peak_mem_mb, model_mem_mb, gpu_mem_mb (cuda) and `<latency figure>.<statistic>`; with each
    the ends of its 95% interval where one is known (`accuracy.lo`, `nll.hi`,
    `decode_ms.p50.lo`, ...: evaluators/stats.py); and how trustworthy the latency is:
    `noise.attempts` (passes of the repeats), `noise.flagged` (1: still noisy after the
    retries) and `noise.other_cores` (cores other processes kept busy during the kept pass)."""
    metrics: dict[str, float] = {
        "size_mb": folder_size_mb(model_dir),
        "peak_mem_mb": latency.memory.peak_mem_mb,
        "model_mem_mb": latency.memory.model_mem_mb,
    }
    if latency.memory.gpu_peak_mb is not None:
        metrics["gpu_mem_mb"] = latency.memory.gpu_peak_mb
    if accuracy is not None:
        metrics.update(accuracy.means())
        for name, (low, high) in accuracy.intervals(labels).items():
            metrics[f"{name}.lo"], metrics[f"{name}.hi"] = low, high
    if likelihood is not None:
        metrics.update(likelihood_metrics(likelihood))
    if collapse is not None:
        metrics["collapsed"] = float(collapse.flagged)
    metrics["noise.attempts"] = float(len(latency.attempts))
    metrics["noise.flagged"] = float(bool(latency.noisy))
    if latency.attempts:
        metrics["noise.other_cores"] = latency.attempts[latency.kept].machine.other_cores
    for name, stats in latency.stats.items():
        metrics.update({f"{name}.{stat}": value for stat, value in stats.items()})
    metrics.update(latency_intervals(latency.samples))
    return metrics


def likelihood_metrics(likelihood: Likelihood) -> dict[str, float]:
    """nll, perplexity (exp of nll and of its interval's ends), and with a twin kl and
    top1_agree: each the mean of its per-example figures, with a bootstrap interval."""
    metrics: dict[str, float] = {}
    for name, values in likelihood.per_example().items():
        if not values:
            continue
        metrics[name] = float(np.mean(values))
        metrics[f"{name}.lo"], metrics[f"{name}.hi"] = bootstrap_mean_interval(values)
    if "nll" in metrics:
        for suffix in ("", ".lo", ".hi"):
            metrics[f"perplexity{suffix}"] = perplexity_of(metrics[f"nll{suffix}"])
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

# Why to stop a raced measurement after `n` examples, from their per-example correctness and
# the latency pass's figures; None: score on.
StopRule = Callable[[int, list[bool], dict[str, float]], str | None]


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
    examples: int = 0  # eval examples scored for accuracy
    of: int = 0  # eval examples given
    stopped: str = ""  # why a raced measurement stopped early (its accuracy is partial)
    likelihood: Likelihood | None = None  # per example, those scored
    topk: TopK | None = None  # this model's own, when asked to keep it (the twin of its siblings)
    collapse: Collapse | None = None

    def to_json(self) -> dict[str, Any]:
        stopped = {"stopped": self.stopped} if self.stopped else {}
        return {
            "model_dir": str(self.model_dir),
            "target": self.target,
            "metrics": self.metrics,
            "latency": self.latency.to_json(),
            "accuracy": self.accuracy.to_json() if self.accuracy else None,
            "likelihood": self.likelihood.to_json() if self.likelihood else None,
            "collapse": self.collapse.to_json() if self.collapse else None,
            "seconds": self.seconds,
            "environment": self.environment,
            "examples": {"scored": self.examples, "of": self.of},
            **stopped,
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
    stages: Sequence[int] = (),
    stop: StopRule | None = None,
    twin: TopK | None = None,
    keep_topk: bool = False,
    likelihood: bool = True,
) -> Benchmark:
    """Latency (always), and accuracy and the reference's likelihood (when examples are given)
    of an ORT-genai model folder; `environment` is the machine's `describe(target)` when the
    caller already has it; `label_texts` are the labels as the completions render them
    (candidates/data.py).

    One load of the model and one encoding of the eval prompts serve all: latency first (its
    task requests are the eval prompts), then accuracy, whose passes also give the likelihood
    (evaluators/likelihood.py). Memory figures cover the load and all. With `twin` (the
    unquantised twin's TopK, over the same examples) kl and top1_agree are measured; with
    `keep_topk` and no twin the result keeps this model's own TopK. With `stop`, label scoring
    is raced: after each of `stages` examples (those under the split's size) `stop` may end
    it, leaving a partial measurement (`stopped` says why). `likelihood=False` leaves the
    likelihood out (the measure stage as it was before it, for bench/measure_cost.py).
    """
    seconds: dict[str, float] = {}
    accuracy = None
    stopped = ""
    meter = LikelihoodMeter(twin, keep_topk) if examples and likelihood else None
    raced = [n for n in stages if 0 < n < len(examples or [])] if labels and stop else []
    prompts = [e.prompt for e in examples] if examples else []
    with track_memory(target) as memory:
        loaded = load_model(model_dir, target, settings.threads)
        seconds["load"] = loaded.load_s
        start = time.perf_counter()
        encoded = [loaded.encode(prompt) for prompt in prompts]
        latency = latency_of(loaded, prompts, settings, memory, encoded)
        seconds["latency"] = time.perf_counter() - start
        if examples and raced and labels and stop:
            figures = flat_metrics(None, latency, model_dir, labels)
            accuracy, stopped = race_labels(
                loaded, examples, labels, label_texts, encoded, raced, stop, figures, seconds, meter
            )
        elif examples:
            start = time.perf_counter()
            accuracy = accuracy_of(
                loaded,
                examples,
                labels,
                metric=metric,
                label_texts=label_texts,
                prompts=encoded,
                meter=meter,
            )
            seconds["accuracy"] = time.perf_counter() - start
        del loaded
    gathered: Likelihood | None = None
    collapse: Collapse | None = None
    if meter is not None and accuracy is not None:
        # the meter's arithmetic, out of the accuracy time it was part of (the sum stays)
        seconds["accuracy"] -= meter.seconds
        seconds["likelihood"] = meter.seconds
        gathered = meter.figures
    if accuracy is not None:
        scored = prompts[: len(accuracy.predictions)]
        collapse = collapse_of(accuracy.predictions, accuracy.references, scored)
    if stopped:
        metrics = flat_metrics(None, latency, model_dir, labels)
    else:
        metrics = flat_metrics(accuracy, latency, model_dir, labels, gathered, collapse)
    if stopped and accuracy is not None:
        metrics.update(partial_accuracy=accuracy.accuracy, partial_examples=len(accuracy.correct))
    return Benchmark(
        model_dir=Path(model_dir),
        target=target,
        metrics=metrics,
        latency=latency,
        accuracy=accuracy,
        seconds=seconds,
        environment=environment or describe(target),
        examples=len(accuracy.correct) if accuracy is not None else 0,
        of=len(examples or []),
        stopped=stopped,
        likelihood=gathered,
        topk=meter.topk() if meter is not None and not stopped else None,
        collapse=collapse,
    )


def race_labels(
    loaded: LoadedModel,
    examples: list[Example],
    labels: list[str],
    label_texts: dict[str, str] | None,
    prompts: list[list[int]],
    stages: list[int],
    stop: StopRule,
    figures: dict[str, float],
    seconds: dict[str, float],
    meter: LikelihoodMeter | None = None,
) -> tuple[AccuracyResult, str]:
    """Label scoring a prefix at a time, `stop` asked after each of `stages` examples: the
    accuracy so far, and why it stopped ("" once the whole split is scored, with the same result
    `accuracy_of` gives). Scoring time goes to `seconds["accuracy"]`, the rule's to "racing".
    `meter` gets the likelihood of the examples scored (the prefix, when it stops)."""
    eos, _ = special_ids(loaded.path)
    references = [e.completion.strip() for e in examples]
    predictions: list[str] = []
    seconds["accuracy"] = seconds["racing"] = 0.0
    for end in [*stages, len(examples)]:
        start, begin = time.perf_counter(), len(predictions)
        predictions += score_labels(
            loaded.model,
            loaded.tokenizer,
            examples[begin:end],
            labels,
            eos,
            label_texts,
            prompts[begin:end],
            meter,
        )
        seconds["accuracy"] += time.perf_counter() - start
        if end == len(examples):
            break
        start = time.perf_counter()
        correct = [p == r for p, r in zip(predictions, references, strict=False)]
        why = stop(end, correct, figures)
        seconds["racing"] += time.perf_counter() - start
        if why:
            return classification_result(predictions, references[:end], labels), why
    return classification_result(predictions, references, labels), ""
