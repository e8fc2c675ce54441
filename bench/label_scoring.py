"""Label scoring against greedy generation on the tiny space's eval split: same answers, faster?

Predicts each eval example's label twice with the fp32 export of a fine-tuned tiny model: by label
scoring (autotune's `score_labels`: the prompt once, then each label's tokens from the same
key-value cache; the most likely `label + EOS` wins) and by greedy generation (`generate_greedy`,
3 new tokens, the first generated word). Reports how often the two agree, the accuracy of each,
and the wall time of each (goal: scoring at least 3x faster).

Run: .venv/bin/python -m bench.label_scoring [--model DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.candidates.data import Example
from autotune.evaluators.generation import generate_greedy
from autotune.evaluators.label_scoring import score_labels
from autotune.evaluators.runtime import open_model, special_ids
from bench.lib.results import write_result
from bench.lib.tiny_models import DEFAULT_CACHE, tiny_dataset, trained_fp32_model

if TYPE_CHECKING:
    import onnxruntime_genai as og

GOAL_SPEEDUP = 3.0
NEW_TOKENS = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="fp32 onnxruntime-genai model folder")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where models are built")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each method")
    return parser.parse_args()


def first_word(text: str) -> str:
    """The first whitespace-separated word of a generation ('' when there is none)."""
    words = text.split()
    return words[0] if words else ""


def alternate(
    methods: dict[str, Callable[[], list[str]]], runs: int
) -> tuple[dict[str, list[str]], dict[str, list[float]]]:
    """Each method's predictions and wall seconds per run, the methods taking turns so that
    drift in CPU speed hits all alike; a method whose predictions change between runs is an
    error."""
    predictions: dict[str, list[str]] = {}
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(runs):
        for name, predict in methods.items():
            start = time.perf_counter()
            result = predict()
            seconds[name].append(time.perf_counter() - start)
            if predictions.setdefault(name, result) != result:
                raise RuntimeError(f"{name}: predictions changed between runs")
    return predictions, seconds


def fraction(hits: int, total: int) -> str:
    return f"{hits / total:.3f} ({hits}/{total})" if total else "n/a (0/0)"


def agreement(left: list[str], right: list[str], keep: list[bool]) -> tuple[int, int]:
    """(equal pairs, pairs) among the positions where `keep` is true."""
    pairs = [(a, b) for a, b, k in zip(left, right, keep, strict=True) if k]
    return sum(a == b for a, b in pairs), len(pairs)


def report(
    examples: list[Example],
    labels: list[str],
    scored: list[str],
    generated: list[str],
) -> dict[str, tuple[int, int]]:
    """Print the counts, agreement and accuracy of the two methods' predictions; each as
    (hits, total)."""
    references = [e.completion.strip() for e in examples]
    greedy = [first_word(text) for text in generated]
    in_labels = [word in labels for word in greedy]
    everywhere = [True] * len(examples)
    counts = {
        "greedy first word is a label": (sum(in_labels), len(examples)),
        "agreement where it is": agreement(scored, greedy, in_labels),
        "agreement over all": agreement(scored, greedy, everywhere),
        "accuracy, label scoring": agreement(scored, references, everywhere),
        "accuracy, greedy generation": agreement(greedy, references, everywhere),
    }
    print(f"examples: {len(examples)}; labels: {', '.join(labels)}")
    for name, (hits, total) in counts.items():
        print(f"{name + ':':<30}{fraction(hits, total)}")
    strays = sorted({word for word, ok in zip(greedy, in_labels, strict=True) if not ok})
    if strays:
        print(f"greedy first words outside the labels: {strays[:10]}")
    return counts


def model_tokens(tokenizer: og.Tokenizer, examples: list[Example], labels: list[str]) -> None:
    """How many token positions each method runs through the model (what the time goes into)."""
    prompts = [len(tokenizer.encode(e.prompt)) for e in examples]
    label_lengths = [len(tokenizer.encode(label)) for label in labels]  # appended after a rewind
    appended = len(prompts) * sum(label_lengths)
    print(
        f"token positions through the model: label scoring {sum(prompts)} in {len(prompts)} "
        f"prefills + {appended} label tokens in {len(prompts) * len(labels)} appends; greedy "
        f"{sum(prompts)} in {len(prompts)} prefills + at most "
        f"{len(prompts) * (NEW_TOKENS - 1)} one-token steps"
    )


def report_times(scoring: list[float], greedy: list[float], runs: int) -> dict[str, float]:
    """Print the median wall time of each method and the speed ratio against the goal; the
    medians and the ratio."""
    fast, slow = statistics.median(scoring), statistics.median(greedy)
    print(f"\nwall time, median of {runs} runs (all runs):")
    print(f"  label scoring:     {fast:.3f} s  {[round(s, 3) for s in scoring]}")
    print(f"  greedy generation: {slow:.3f} s  {[round(s, 3) for s in greedy]}")
    ratio = slow / fast
    verdict = "PASS" if ratio >= GOAL_SPEEDUP else "FAIL"
    print(f"speed ratio greedy/scoring: {ratio:.2f}x (goal >= {GOAL_SPEEDUP:g}x): {verdict}")
    return {"scoring_s": fast, "greedy_s": slow, "greedy_over_scoring": ratio}


def main() -> int:
    import onnxruntime_genai as og

    args = parse_args()
    dataset = tiny_dataset()
    path = args.model or trained_fp32_model(args.cache)
    labels = dataset.labels or []
    examples = dataset.eval
    model = open_model(path, "cpu", 1)
    tokenizer = og.Tokenizer(model)
    eos, _ = special_ids(path)
    print(f"model: {path}\nintra-op threads: 1")
    print(f"cpu cores: {os.cpu_count()}; load average: {os.getloadavg()}")

    def scoring() -> list[str]:
        return score_labels(model, tokenizer, examples, labels, eos)

    def greedy() -> list[str]:
        return generate_greedy(model, tokenizer, examples, NEW_TOKENS)

    # One warm-up pass of each on a few examples, so neither pays for first-call set-up.
    score_labels(model, tokenizer, examples[:8], labels, eos)
    generate_greedy(model, tokenizer, examples[:8], NEW_TOKENS)
    predictions, seconds = alternate({"scoring": scoring, "greedy": greedy}, args.runs)
    counts = report(examples, labels, predictions["scoring"], predictions["greedy"])
    medians = report_times(seconds["scoring"], seconds["greedy"], args.runs)
    model_tokens(tokenizer, examples, labels)
    figures = {"counts": counts, "median": medians, "seconds": seconds}
    figures["passed"] = medians["greedy_over_scoring"] >= GOAL_SPEEDUP
    write_result("label_scoring", figures, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
