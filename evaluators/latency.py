"""Generation latency of an exported model, measured with onnxruntime-genai.

One repeat generates exactly `new_tokens` tokens greedily (min_length forces the length) after a
prompt of exactly `prompt_tokens` tokens, on a fresh generator:
- time to first token (ttft): `append_tokens` (the prefill) plus the first `generate_next_token`;
- decode: each later `generate_next_token`, per token;
- end to end (e2e): the whole request; tokens/s: new tokens over e2e.
Warm-up repeats are discarded; the rest are summarised by percentiles, mean, std and CV.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from autotune.evaluators.runtime import open_model

STATISTICS = ("p50", "p90", "p99", "mean", "std", "cv")


@dataclass(frozen=True)
class LatencySettings:
    prompt_tokens: int = 64
    new_tokens: int = 8
    warmup: int = 2
    repeats: int = 10
    threads: int = 1


def summarize(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/std/cv of a list of samples (cv = std / mean)."""
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


def fixed_length_prompt(tokenizer, texts: list[str], length: int) -> list[int]:
    """Exactly `length` tokens of real text: the token streams of `texts`, cycled and cut."""
    stream: list[int] = []
    for text in texts:
        stream.extend(int(t) for t in tokenizer.encode(text))
    if not stream:
        raise ValueError("no text to build a latency prompt from")
    while len(stream) < length:
        stream.extend(stream)
    return stream[:length]


def time_one_request(model, prompt: list[int], new_tokens: int) -> tuple[float, list[float], float]:
    """(ttft seconds, per-token decode seconds, e2e seconds) of one greedy request."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    total = len(prompt) + new_tokens
    params.set_search_options(do_sample=False, max_length=total, min_length=total)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(prompt)
    generator.generate_next_token()
    first = time.perf_counter()
    steps = []
    previous = first
    for _ in range(new_tokens - 1):
        generator.generate_next_token()
        now = time.perf_counter()
        steps.append(now - previous)
        previous = now
    return first - start, steps, previous - start


def measure_latency(
    model_dir: Path, target: str, prompt_texts: list[str], settings: LatencySettings
) -> dict[str, dict[str, float]]:
    """Latency statistics in milliseconds (tokens_per_s in tokens per second)."""
    import onnxruntime_genai as og

    model = open_model(model_dir, target, settings.threads)
    prompt = fixed_length_prompt(og.Tokenizer(model), prompt_texts, settings.prompt_tokens)
    ttft, decode, e2e, rate = [], [], [], []
    for repeat in range(settings.warmup + settings.repeats):
        first, steps, whole = time_one_request(model, prompt, settings.new_tokens)
        if repeat < settings.warmup:
            continue
        ttft.append(first * 1e3)
        decode.append(sum(steps) / len(steps) * 1e3)
        e2e.append(whole * 1e3)
        rate.append(settings.new_tokens / whole)
    return {
        "ttft_ms": summarize(ttft),
        "decode_ms": summarize(decode),
        "e2e_ms": summarize(e2e),
        "tokens_per_s": summarize(rate),
    }
