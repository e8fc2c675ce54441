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

The machine is watched while the repeats run (evaluators/machine_state.py). A measurement taken
under outside load, or more spread than `latency.noise` allows, is taken again (after waiting for
the load to end) up to `noise.retries` times; the first clean attempt is kept, else the one with
the lowest decode median (outside load only ever slows a measurement), flagged noisy.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autotune.evaluators.machine_state import MachineState, contamination, observe
from autotune.evaluators.memory import MemoryReport, track_memory
from autotune.evaluators.runtime import LoadedModel, load_model
from autotune.evaluators.stats import median_halfwidth, summarize
from autotune.spaces import LatencySection, NoiseSection
from autotune.spaces.metrics import LATENCY_METRICS

# Used when no space gives real prompts (e.g. `autotune bench` without --space).
FALLBACK_PROMPTS = (
    "The committee met on a rainy Tuesday to review the budget for the coming year, and after a "
    "long discussion about roads, schools and the old library, it agreed to publish a summary.",
    "Write a short note to a neighbour thanking them for looking after the garden in July.",
)


@dataclass(frozen=True)
class Attempt:
    """One pass of the repeats: what the machine did meanwhile, and why not to trust it."""

    machine: MachineState
    reasons: list[str]  # empty: clean
    decode_p50: float

    def to_json(self) -> dict:
        return {
            "machine": self.machine.to_json(),
            "reasons": self.reasons,
            "decode_p50": self.decode_p50,
        }


@dataclass
class LatencyResult:
    """Statistics per figure (`ttft_ms` -> {p50, p90, ...}), how they were obtained, memory,
    and every attempt (the kept one's reasons are `noisy`: empty when it was clean)."""

    stats: dict[str, dict[str, float]]
    repeats: int
    halfwidth: dict[str, float]
    memory: MemoryReport
    load_s: float
    settings: LatencySection  # the space's `latency` section
    samples: dict[str, list[float]] = field(default_factory=dict, repr=False)
    attempts: list[Attempt] = field(default_factory=list)
    kept: int = 0  # which attempt the figures are from

    @property
    def noisy(self) -> list[str]:
        return self.attempts[self.kept].reasons if self.attempts else []

    def to_json(self) -> dict:
        return {
            "stats": self.stats,
            "repeats": self.repeats,
            "median_ci_halfwidth": self.halfwidth,
            "memory": asdict(self.memory),
            "load_s": self.load_s,
            "settings": self.settings.model_dump(exclude={"stat"}),
            "samples": self.samples,
            "attempts": [a.to_json() for a in self.attempts],
            "kept": self.kept,
            "noisy": self.noisy,
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


def one_repeat(model, synthetic: list[int], task: list[int], new_tokens: int) -> dict[str, float]:
    """One repeat: the synthetic request (ttft, decode) and a task request (e2e, tokens/s)."""
    first, steps, _ = time_one_request(model, synthetic, new_tokens)
    _, _, whole = time_one_request(model, task, new_tokens)
    return {
        "ttft_ms": first * 1e3,
        "decode_ms": sum(steps) / len(steps) * 1e3,
        "e2e_ms": whole * 1e3,
        "tokens_per_s": new_tokens / whole,
    }


def is_stable(samples: dict[str, list[float]], settings: LatencySection) -> bool:
    if settings.stable is None:
        return len(samples["ttft_ms"]) >= settings.repeats
    if len(samples["ttft_ms"]) < settings.repeats:
        return False
    return all(median_halfwidth(samples[k]) < settings.stable for k in ("ttft_ms", "decode_ms"))


def measure_latency(
    model_dir: Path, target: str, prompt_texts: list[str], settings: LatencySection
) -> LatencyResult:
    """Latency statistics in milliseconds (tokens_per_s in tokens per second), with memory:
    `latency_of` a fresh load."""
    with track_memory(target) as memory:
        loaded = load_model(model_dir, target, settings.threads)
        result = latency_of(loaded, prompt_texts, settings, memory)
        del loaded
    return result


def latency_of(
    loaded: LoadedModel,
    prompt_texts: list[str],
    settings: LatencySection,
    memory: MemoryReport,
    tasks: list[list[int]] | None = None,
) -> LatencyResult:
    """Latency of a loaded model (see the module's docstring); `memory` is the report of the
    `track_memory` block the caller runs this in; `tasks`: the prompts already encoded."""
    texts = list(prompt_texts) or list(FALLBACK_PROMPTS)
    synthetic = fixed_length_prompt(loaded.tokenizer, texts, settings.prompt_tokens)
    if not tasks:
        tasks = [loaded.encode(text) for text in texts]
    attempts: list[Attempt] = []
    runs: list[dict[str, list[float]]] = []
    for attempt in range(settings.noise.retries + 1):
        if attempt:
            wait_for_quiet(settings.noise)
        with observe() as seen:
            samples = time_repeats(loaded.model, synthetic, tasks, settings)
        spread = {k: summarize(samples[k])["cv"] for k in ("ttft_ms", "decode_ms")}
        reasons = contamination(seen.state, spread, settings.noise)
        decode = summarize(samples["decode_ms"])["p50"]
        attempts.append(Attempt(seen.state, reasons, decode))
        runs.append(samples)
        if not reasons:
            break
    kept = next(
        (i for i, a in enumerate(attempts) if not a.reasons),
        min(range(len(attempts)), key=lambda i: attempts[i].decode_p50),
    )
    samples = runs[kept]
    return LatencyResult(
        stats={name: summarize(values) for name, values in samples.items()},
        repeats=len(samples["ttft_ms"]),
        halfwidth={name: median_halfwidth(values) for name, values in samples.items()},
        memory=memory,
        load_s=loaded.load_s,
        settings=settings,
        samples=samples,
        attempts=attempts,
        kept=kept,
    )


def time_repeats(
    model, synthetic: list[int], tasks: list[list[int]], settings: LatencySection
) -> dict[str, list[float]]:
    """The warm-up, then the timed repeats, each a synthetic and a task request."""
    samples: dict[str, list[float]] = {name: [] for name in LATENCY_METRICS}
    collecting = gc.isenabled()
    gc.disable()  # as timeit does: no collector pauses inside the timed requests
    try:
        for repeat in range(settings.warmup + settings.max_repeats):
            figures = one_repeat(model, synthetic, tasks[repeat % len(tasks)], settings.new_tokens)
            if repeat < settings.warmup:
                continue
            for name, value in figures.items():
                samples[name].append(value)
            if is_stable(samples, settings):
                break
    finally:
        if collecting:
            gc.enable()
    return samples


def interleaved(
    loaded: dict[Any, LoadedModel], prompt_texts: list[str], settings: LatencySection
) -> dict[Any, dict[str, list[float]]]:
    """The repeats of several loaded models taken in turns (A B C A B C ...), so that whatever
    the machine does meanwhile falls on all of them alike; the samples per model."""
    texts = list(prompt_texts) or list(FALLBACK_PROMPTS)
    synthetic = {
        k: fixed_length_prompt(m.tokenizer, texts, settings.prompt_tokens)
        for k, m in loaded.items()
    }
    used = texts[: settings.warmup + settings.repeats]  # the task prompts a measurement uses
    tasks = {k: [m.encode(t) for t in used] for k, m in loaded.items()}
    samples: dict[Any, dict[str, list[float]]] = {
        k: {name: [] for name in LATENCY_METRICS} for k in loaded
    }
    collecting = gc.isenabled()
    gc.disable()
    try:
        for repeat in range(settings.warmup + settings.repeats):
            for k, model in loaded.items():
                task = tasks[k][repeat % len(tasks[k])]
                figures = one_repeat(model.model, synthetic[k], task, settings.new_tokens)
                if repeat >= settings.warmup:
                    for name, value in figures.items():
                        samples[k][name].append(value)
    finally:
        if collecting:
            gc.enable()
    return samples


def wait_for_quiet(noise: NoiseSection, window_s: float = 0.5) -> None:
    """Wait (at most `noise.quiet_wait_s`) until other processes leave this process's cores."""
    deadline = time.perf_counter() + noise.quiet_wait_s
    while time.perf_counter() < deadline:
        with observe() as seen:
            time.sleep(window_s)
        if seen.state.other_cores <= noise.max_other_cores:
            return
