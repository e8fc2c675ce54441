"""The metric vocabulary: every figure autotune measures, its unit and what it means.

One table, used by the space schema (which names a space may use as objectives and constraints),
the evaluators (the names they report under), the trials table, `autotune bench` and the model
card. It lives beside the schema, at the bottom of the import graph, because the schema validates
metric names when a space file loads, before anything is measured.

Latency figures are summarised over repeats, so their table columns carry a statistic suffix
(`decode_ms.p90`); in a space file the suffix may be left out, and `latency.stat` applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MetricInfo:
    """One figure: its unit, what it measures, and the targets it exists on."""

    unit: str
    description: str
    targets: tuple[str, ...] = ("cpu", "cuda")


# Latency figures, measured over repeats (see evaluators/latency.py).
LATENCY_METRICS: dict[str, MetricInfo] = {
    "ttft_ms": MetricInfo("ms", "time to first token: prefill plus the first token"),
    "decode_ms": MetricInfo("ms/token", "time per new token after the first"),
    "e2e_ms": MetricInfo("ms", "a whole request: a real eval prompt and its new tokens"),
    "tokens_per_s": MetricInfo("tokens/s", "new tokens over e2e time"),
}
# Quality figures, each a mean over the eval examples with a per-example score behind it (the
# evidence of paired tests, decisions/dominance.py) and a 95% interval (evaluators/stats.py).
CLASSIFICATION_METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("", "share of eval examples whose label scored most likely"),
    "macro_f1": MetricInfo("", "macro-averaged F1 over the labels"),
}
TEXT_METRICS: dict[str, MetricInfo] = {
    "exact_match": MetricInfo(
        "",
        "share of greedy generations equal to the reference, normalised (case, whitespace, "
        "punctuation, articles)",
    ),
    "rouge_l": MetricInfo("", "ROUGE-L F1 of generation and reference (rouge-score, stemmed)"),
    "chrf": MetricInfo("", "chrF of generation and reference (sacrebleu, 0 to 100)"),
    "bleu": MetricInfo("", "sentence BLEU of generation and reference (sacrebleu, 0 to 100)"),
}
LIKELIHOOD_METRICS: dict[str, MetricInfo] = {
    "nll": MetricInfo(
        "nats/token", "negative log-likelihood of the reference completion, teacher-forced"
    ),
    "perplexity": MetricInfo("", "exp(nll)"),
}
AGREEMENT_METRICS: dict[str, MetricInfo] = {
    "kl": MetricInfo(
        "nats/token", "KL divergence of the next-token distribution from the unquantised twin's"
    ),
    "top1_agree": MetricInfo("", "share of positions where the twin's top token is the top token"),
}
QUALITY_METRICS: dict[str, MetricInfo] = {
    **CLASSIFICATION_METRICS,
    **TEXT_METRICS,
    **LIKELIHOOD_METRICS,
    **AGREEMENT_METRICS,
}
# Figures measured once per candidate.
SCALAR_METRICS: dict[str, MetricInfo] = {
    **QUALITY_METRICS,
    "gain_over_base": MetricInfo(
        "", "the headline quality figure over the untrained base's (decisions/derived.py)"
    ),
    "quant_drop": MetricInfo(
        "", "the headline quality figure lost against the unquantised twin (decisions/derived.py)"
    ),
    "collapsed": MetricInfo(
        "", "1 when the predictions are mostly one string, empty, or echoes of the prompt"
    ),
    "size_mb": MetricInfo("MiB", "the model folder on disk"),
    "peak_mem_mb": MetricInfo("MiB", "peak resident memory of the measuring process"),
    "model_mem_mb": MetricInfo("MiB", "resident memory the loaded model added"),
    "gpu_mem_mb": MetricInfo("MiB", "peak GPU memory of the process (NVML)", ("cuda",)),
    "train_peak_mem_mb": MetricInfo(
        "MiB", "peak memory of the adapter's training (GPU on a GPU, resident on a CPU)"
    ),
    "train_s": MetricInfo("s", "seconds the adapter's training took"),
    "train_tokens_per_s": MetricInfo(
        "tokens/s", "non-pad tokens the adapter's training processed a second (optimiser steps)"
    ),
    "train_flops_share": MetricInfo(
        "",
        "the training's achieved FLOP rate over this machine's measured matrix-product rate in "
        "its dtype (candidates/throughput.py)",
    ),
}
# Figures where lower is better, for messages that need no space to say so.
LOWER_IS_BETTER = ("nll", "perplexity", "kl", "quant_drop", "collapsed")
METRICS: dict[str, MetricInfo] = {**SCALAR_METRICS, **LATENCY_METRICS}

# The statistics a space may ask of a latency figure, and all that are reported.
STATS = ("p50", "p90", "p99", "mean")
REPORTED_STATS = (*STATS, "std", "cv")
# Shipped `evaluate` metric modules (evaluators/metric_modules/) a space may name in data.metric.
SHIPPED_SCORERS = ("classification", "exact_match")
# Figures a space of each kind measures; a custom `evaluate` module (data.metric) adds its own.
CLASSIFICATION_FIGURES = (*CLASSIFICATION_METRICS, *LIKELIHOOD_METRICS, *AGREEMENT_METRICS)
GENERATIVE_FIGURES = (*TEXT_METRICS, *LIKELIHOOD_METRICS, *AGREEMENT_METRICS)


def headline_metric(objectives: dict[str, str], classification: bool) -> str:
    """The quality figure that gain_over_base and quant_drop are differences of: the first
    objective that is a quality figure (a custom module's name counts when it is not a known
    metric), else accuracy for a classification, rouge_l for generations."""
    for name in objectives:
        base, _ = split_metric(name)
        if base in QUALITY_METRICS or base not in METRICS:
            return base
    return "accuracy" if classification else "rouge_l"


def split_metric(name: str) -> tuple[str, str | None]:
    """'decode_ms.p90' -> ('decode_ms', 'p90'); 'accuracy' -> ('accuracy', None)."""
    base, _, stat = name.partition(".")
    return base, (stat or None)


def metric_column(name: str, default_stat: str) -> str:
    """The trials-table column of a metric: 'e2e_ms' -> 'e2e_ms.p50' when the stat is p50."""
    base, stat = split_metric(name)
    return f"{base}.{stat or default_stat}" if base in LATENCY_METRICS else base


def metric_value(metrics: dict[str, float], name: str, default_stat: str) -> float:
    """A metric by the name a space uses; latency metrics default to `default_stat`."""
    return metrics[metric_column(name, default_stat)]


# The ends of a figure's 95% interval, as column suffixes: `accuracy.lo`, `decode_ms.p50.hi`.
INTERVAL_ENDS = ("lo", "hi")


def is_metric_column(column: str) -> bool:
    """True for a trials-table column that holds a metric (`accuracy`, `decode_ms.p90`, ...)
    or an end of its interval (`accuracy.lo`, `decode_ms.p50.hi`)."""
    base, stat = split_metric(column)
    return (base in SCALAR_METRICS and stat in (None, *INTERVAL_ENDS)) or (
        base in LATENCY_METRICS and stat is not None
    )


def interval_of(metrics: dict[str, float], column: str) -> tuple[float, float] | None:
    """The 95% interval recorded with a metric column, or None."""
    low, high = metrics.get(f"{column}.lo"), metrics.get(f"{column}.hi")
    return (low, high) if low is not None and high is not None else None


def check_metric(name: str) -> str | None:
    """None when `name` is a metric a space may use, else what was expected."""
    base, stat = split_metric(name)
    if base in SCALAR_METRICS and stat is None:
        return None
    if base in LATENCY_METRICS and (stat is None or stat in STATS):
        return None
    return (
        f"expected a metric: one of {tuple(METRICS)}, latency metrics optionally with a "
        f"statistic suffix {STATS} (e.g. 'decode_ms.p90'), got {name!r}"
    )


def unit(name: str) -> str:
    """The unit of a metric or trials-table column ('' for a share or an unknown name)."""
    info = METRICS.get(split_metric(name)[0])
    return info.unit if info else ""


def describe(name: str) -> str:
    """What a metric or trials-table column measures ('' for an unknown name)."""
    info = METRICS.get(split_metric(name)[0])
    return info.description if info else ""


def fmt(value: Any, digits: int = 4, exponent_below: float = 0.0) -> str:
    """How every table, card and message writes a figure: `digits` significant digits, floats
    smaller than `exponent_below` (a learning rate, say) in scientific notation, None and NaN as
    an empty cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if value != 0 and abs(value) < exponent_below:
            return f"{value:.{max(digits - 1, 1)}e}"
        return f"{value:.{digits}g}"
    return str(value)
