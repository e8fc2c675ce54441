"""Does autotune's latency evaluator agree with an independent timing loop, and with itself?

Part 1 measures one model with autotune's `measure_latency` and with a loop written here after
the method of onnxruntime-genai's benchmark_e2e.py, in alternating rounds (A B, B A, ...) so that
CPU-frequency drift hits both alike, and compares the medians (goal: within 5%).
Part 2 runs `measure_latency` three times in a row and compares the medians (goal: within 5%).

Run: .venv/bin/python -m bench.latency_fidelity [--model DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotune.evaluators.environment import cpu_model
from autotune.evaluators.latency import fixed_length_prompt, measure_latency
from autotune.spaces import LatencySection
from bench.lib.results import write_result
from bench.lib.tiny_models import DEFAULT_CACHE, int4_base_model, tiny_dataset

if TYPE_CHECKING:
    import onnxruntime_genai as og

# onnxruntime_genai is imported inside functions, after `autotune` (which turns telemetry off).

GOAL = 0.05


@dataclass
class Samples:
    """Latency samples in milliseconds: time to first token and its prefill part (per request),
    decode (per step, or for autotune per request) and the mean decode step of each request."""

    ttft_ms: list[float] = field(default_factory=list)
    prefill_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    request_decode_ms: list[float] = field(default_factory=list)

    def extend(self, other: Samples) -> None:
        self.ttft_ms += other.ttft_ms
        self.prefill_ms += other.prefill_ms
        self.decode_ms += other.decode_ms
        self.request_decode_ms += other.request_decode_ms


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="onnxruntime-genai model folder to measure")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where models are built")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds of part 1")
    parser.add_argument("--repeats", type=int, default=300, help="timed requests per round/run")
    parser.add_argument("--warmup", type=int, default=5, help="discarded requests per round/run")
    return parser.parse_args()


# --------------------------------------------------------------------------- independent loop


def open_independently(path: Path, threads: int) -> og.Model:
    """An `og.Model` on the cpu provider with `threads` intra-op threads, set up here."""
    import onnxruntime_genai as og

    config = og.Config(str(path))
    config.clear_providers()
    options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    return og.Model(config)


def timed_request(model: og.Model, prompt: list[int], new_tokens: int) -> Samples:
    """One greedy request, each runtime call timed on its own, the benchmark_e2e way.

    - prefill: the `append_tokens` call, which runs the model over the whole prompt;
    - time to first token: prefill plus the first `generate_next_token`, which only picks the
      token from the prefill's logits (benchmark_e2e's prompt processing + first sampling);
    - decode: each later `generate_next_token`, which runs the model on the previous token and
      picks the next one, one sample per call. Every step reads its token back
      (`get_next_tokens`) inside the timer, as autotune does.
    Unlike autotune, the garbage collector keeps running, as in benchmark_e2e.
    """
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    total = len(prompt) + new_tokens
    params.set_search_options(do_sample=False, max_length=total, min_length=total)
    generator = og.Generator(model, params)
    start = time.perf_counter()
    generator.append_tokens(prompt)
    prefilled = time.perf_counter()
    generator.generate_next_token()
    generator.get_next_tokens()
    first = time.perf_counter()
    samples = Samples(ttft_ms=[(first - start) * 1e3], prefill_ms=[(prefilled - start) * 1e3])
    while not generator.is_done():
        step_start = time.perf_counter()
        generator.generate_next_token()
        generator.get_next_tokens()
        samples.decode_ms.append((time.perf_counter() - step_start) * 1e3)
    samples.request_decode_ms.append(statistics.fmean(samples.decode_ms))
    return samples


def independent_round(path: Path, prompt: list[int], args: argparse.Namespace) -> Samples:
    """Warm-up requests, then `args.repeats` timed ones, on a freshly opened model."""
    model = open_independently(path, args.threads)
    for _ in range(args.warmup):
        timed_request(model, prompt, args.new_tokens)
    samples = Samples()
    for _ in range(args.repeats):
        samples.extend(timed_request(model, prompt, args.new_tokens))
    return samples


# --------------------------------------------------------------------------- autotune's evaluator


def autotune_round(path: Path, texts: list[str], settings: LatencySection) -> Samples:
    """One `measure_latency` call; its decode samples are per-request means of the steps.

    Each of its repeats also makes a request on a real prompt (for its e2e figure), which is not
    compared here.
    """
    result = measure_latency(path, "cpu", texts, settings)
    decode = result.samples["decode_ms"]
    return Samples(ttft_ms=result.samples["ttft_ms"], decode_ms=decode, request_decode_ms=decode)


# --------------------------------------------------------------------------- reporting


def median(values: list[float]) -> float:
    return statistics.median(values)


def first_step_median(samples: Samples) -> float:
    """Median of the first decode step of each request (per-step samples only)."""
    steps = len(samples.decode_ms) // len(samples.ttft_ms)
    return median(samples.decode_ms[::steps])


def spread(values: list[float]) -> float:
    """(max - min) / min."""
    return (max(values) - min(values)) / min(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_environment(path: Path, args: argparse.Namespace) -> None:
    print(f"cpu: {cpu_model()}; logical cores {os.cpu_count()}; load average {os.getloadavg()}")
    print(
        f"onnxruntime {version('onnxruntime')}, onnxruntime-genai {version('onnxruntime-genai')}, "
        f"python {platform.python_version()}"
    )
    print(f"model: {path}")
    print(
        f"settings: prompt {args.prompt_tokens} tokens, {args.new_tokens} new tokens, greedy, "
        f"intra-op threads {args.threads}, {args.rounds} rounds x ({args.warmup} warm-up + "
        f"{args.repeats} timed) requests per method"
    )


def compare(
    ours: Samples, independent: Samples, per_round: list[tuple[str, float, float]]
) -> dict[str, Any]:
    """Print part 1's table; its medians and ratios, and whether the ttft and decode ratios are
    within the goal.

    The decode goal compares autotune's figure (median of per-request mean steps) with the
    independent per-step median; the row below it compares like with like (median of
    per-request means on both sides) and is for information only.
    """
    rows = [
        ("ttft_ms", "ttft p50 (ms)", ours.ttft_ms, independent.ttft_ms),
        ("decode_ms", "decode p50 (ms/token)", ours.decode_ms, independent.decode_ms),
        (
            "decode_ms.request_means",
            "  same, request means",
            ours.request_decode_ms,
            independent.request_decode_ms,
        ),
    ]
    print(f"\n{'figure':<24}{'autotune':>12}{'independent':>14}{'ratio':>9}")
    ratios, figures = [], {}
    for key, name, mine, theirs in rows:
        ratios.append(median(mine) / median(theirs))
        print(f"{name:<24}{median(mine):>12.4f}{median(theirs):>14.4f}{ratios[-1]:>9.3f}")
        figures[key] = {"autotune": median(mine), "independent": median(theirs)}
        figures[key]["ratio"] = ratios[-1]
    ok = all(abs(ratio - 1) <= GOAL for ratio in ratios[:2])
    print(
        f"(independent: prefill alone p50 {median(independent.prefill_ms):.4f} ms; decode mean "
        f"{statistics.fmean(independent.decode_ms):.4f} ms over {len(independent.decode_ms)} "
        f"steps; first decode step of a request p50 {first_step_median(independent):.4f} ms)"
    )
    print("per round (method: ttft p50, decode p50):")
    for name, ttft, decode in per_round:
        print(f"  {name:<24} {ttft:.4f}  {decode:.4f}")
    print(f"part 1, agreement within {GOAL:.0%}: {verdict(ok)}")
    return {"medians": figures, "per_round": per_round, "passed": ok}


def run_part1(
    path: Path,
    prompt: list[int],
    texts: list[str],
    args: argparse.Namespace,
    settings: LatencySection,
) -> dict[str, Any]:
    """Alternating rounds of both methods; pooled medians compared."""
    pooled = {"autotune": Samples(), "independent": Samples()}
    per_round = []
    for round_number in range(args.rounds):
        order = ["autotune", "independent"]
        if round_number % 2:
            order.reverse()
        for method in order:
            if method == "autotune":
                samples = autotune_round(path, texts, settings)
            else:
                samples = independent_round(path, prompt, args)
            pooled[method].extend(samples)
            label = f"{round_number}:{method}"
            per_round.append((label, median(samples.ttft_ms), median(samples.decode_ms)))
    return compare(pooled["autotune"], pooled["independent"], per_round)


def run_part2(path: Path, texts: list[str], settings: LatencySection) -> dict[str, Any]:
    """Three `measure_latency` calls in a row; the spread of their medians."""
    results = [measure_latency(path, "cpu", texts, settings) for _ in range(3)]
    print(f"\n{'run':<6}{'ttft p50 (ms)':>16}{'decode p50 (ms)':>18}{'repeats':>9}")
    for number, result in enumerate(results, 1):
        ttft, decode = result.stats["ttft_ms"]["p50"], result.stats["decode_ms"]["p50"]
        print(f"{number:<6}{ttft:>16.4f}{decode:>18.4f}{result.repeats:>9}")
    ttft_spread = spread([r.stats["ttft_ms"]["p50"] for r in results])
    decode_spread = spread([r.stats["decode_ms"]["p50"] for r in results])
    print(f"spread (max-min)/min: ttft {ttft_spread:.1%}, decode {decode_spread:.1%}")
    ok = ttft_spread <= GOAL and decode_spread <= GOAL
    print(f"part 2, repeatability within {GOAL:.0%}: {verdict(ok)}")
    runs = [{f: r.stats[f]["p50"] for f in ("ttft_ms", "decode_ms")} for r in results]
    return {"runs": runs, "ttft_spread": ttft_spread, "decode_spread": decode_spread, "passed": ok}


def main() -> int:
    import onnxruntime_genai as og

    args = parse_args()
    path = args.model or int4_base_model(args.cache)
    texts = [example.prompt for example in tiny_dataset().eval]
    tokenizer = og.Tokenizer(open_independently(path, args.threads))
    prompt = fixed_length_prompt(tokenizer, texts, args.prompt_tokens)
    settings = LatencySection(
        prompt_tokens=args.prompt_tokens,
        new_tokens=args.new_tokens,
        warmup=args.warmup,
        repeats=args.repeats,
        max_repeats=args.repeats,
        threads=args.threads,
    )
    print_environment(path, args)
    print("\npart 1: autotune's measure_latency vs the independent loop")
    agree = run_part1(path, prompt, texts, args, settings)
    print("\npart 2: measure_latency three times in a row (fresh og.Model each)")
    repeatable = run_part2(path, texts, settings)
    passed = agree["passed"] and repeatable["passed"]
    print(f"\noverall: {verdict(passed)}")
    figures = {"model": path, "part1": agree, "part2": repeatable, "passed": passed}
    write_result("latency_fidelity", figures, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
