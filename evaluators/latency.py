"""Generation latency of an exported model, measured with onnxruntime-genai.

Each repeat makes two greedy requests on fresh generators of one `og.Model`, both with the
generation length forced (min_length = max_length):
- a synthetic request, a prompt of exactly `prompt_tokens` tokens then `new_tokens` new tokens:
  time to first token (ttft) is `append_tokens` (the prefill) plus the first `generate_next_token`;
  decode is each later `generate_next_token`, per token;
- a task request, one of the space's real prompts (in turn) then `new_tokens` new tokens:
  end to end (e2e) is the whole request, tokens/s is new tokens over e2e.
Every step reads the new token back to the host, which also synchronises CUDA.
Warm-up repeats are discarded and the garbage collector is paused while timing. Then either
exactly `repeats` repeats run, or, with `stable` set, repeats continue (at least `repeats`, at
most `max_repeats`) until the 95% confidence intervals of the ttft and decode medians are
narrower than `stable` (a fraction) on either side.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autotune.evaluators.memory import MemoryReport, track_memory
from autotune.evaluators.runtime import open_model
from autotune.evaluators.stats import median_halfwidth, summarize
from autotune.spaces import LatencySection
from autotune.spaces.metrics import LATENCY_METRICS

# Used when no space gives real prompts (e.g. `autotune bench` without --space).
FALLBACK_PROMPTS = (
    "The committee met on a rainy Tuesday to review the budget for the coming year, and after a "
    "long discussion about roads, schools and the old library, it agreed to publish a summary.",
    "Write a short note to a neighbour thanking them for looking after the garden in July.",
)


@dataclass
class LatencyResult:
    """Statistics per figure (`ttft_ms` -> {p50, p90, ...}), how they were obtained, memory."""

    stats: dict[str, dict[str, float]]
    repeats: int
    halfwidth: dict[str, float]
    memory: MemoryReport
    load_s: float
    settings: LatencySection  # the space's `latency` section
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        return {
            "stats": self.stats,
            "repeats": self.repeats,
            "median_ci_halfwidth": self.halfwidth,
            "memory": asdict(self.memory),
            "load_s": self.load_s,
            "settings": self.settings.model_dump(exclude={"stat"}),
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
    generator.get_next_tokens()
    first = time.perf_counter()
    steps = []
    previous = first
    for _ in range(new_tokens - 1):
        generator.generate_next_token()
        generator.get_next_tokens()
        now = time.perf_counter()
        steps.append(now - previous)
        previous = now
    return first - start, steps, previous - start


def is_stable(samples: dict[str, list[float]], settings: LatencySection) -> bool:
    if settings.stable is None:
        return len(samples["ttft_ms"]) >= settings.repeats
    if len(samples["ttft_ms"]) < settings.repeats:
        return False
    return all(median_halfwidth(samples[k]) < settings.stable for k in ("ttft_ms", "decode_ms"))


def measure_latency(
    model_dir: Path, target: str, prompt_texts: list[str], settings: LatencySection
) -> LatencyResult:
    """Latency statistics in milliseconds (tokens_per_s in tokens per second), with memory."""
    import onnxruntime_genai as og

    with track_memory(target) as memory:
        start = time.perf_counter()
        model = open_model(model_dir, target, settings.threads)
        load_s = time.perf_counter() - start
        tokenizer = og.Tokenizer(model)
        texts = list(prompt_texts) or list(FALLBACK_PROMPTS)
        synthetic = fixed_length_prompt(tokenizer, texts, settings.prompt_tokens)
        tasks = [[int(t) for t in tokenizer.encode(text)] for text in texts]
        samples: dict[str, list[float]] = {name: [] for name in LATENCY_METRICS}
        collecting = gc.isenabled()
        gc.disable()  # as timeit does: no collector pauses inside the timed requests
        try:
            for repeat in range(settings.warmup + settings.max_repeats):
                first, steps, _ = time_one_request(model, synthetic, settings.new_tokens)
                task = tasks[repeat % len(tasks)]
                _, _, whole = time_one_request(model, task, settings.new_tokens)
                if repeat < settings.warmup:
                    continue
                samples["ttft_ms"].append(first * 1e3)
                samples["decode_ms"].append(sum(steps) / len(steps) * 1e3)
                samples["e2e_ms"].append(whole * 1e3)
                samples["tokens_per_s"].append(settings.new_tokens / whole)
                if is_stable(samples, settings):
                    break
        finally:
            if collecting:
                gc.enable()
        del model
    return LatencyResult(
        stats={name: summarize(values) for name, values in samples.items()},
        repeats=len(samples["ttft_ms"]),
        halfwidth={name: median_halfwidth(values) for name, values in samples.items()},
        memory=memory,
        load_s=load_s,
        settings=settings,
        samples=samples,
    )
