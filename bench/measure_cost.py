"""What the measure stage costs per eval example and per prompt token, against the floor: the
model's own prefill throughput on the same prompts.

On one ONNX model (default: the untrained SmolLM2 base of spaces/smollm2.yaml exported at int4;
`--model DIR` for another, e.g. a trial's export) and the space's 256 eval prompts, in alternating
rounds (`--rounds`, default 3), with the space's latency threads:
- floor: one prompt pass per eval prompt (`append_tokens`, then the logits), nothing else;
- scoring: autotune's label scoring (`best_label`: the prompt once, then as few labels as can
  win), and for comparison every label scored in full (`label_scores`);
- the whole measure stage (`benchmark`: one load, latency, then accuracy), once per round, three
  ways: before the likelihood (`likelihood=False`); as the twin measures it (nll, and its own
  top-k log-probs kept); and as a quantised sibling measures it (nll, kl and top1_agree against
  that twin's top-k). `--twin DIR` is the twin's model (default: `--model` itself, which costs
  the twin's arithmetic, not an fp32 model's slower passes).
It prints medians (min to max) per example and per prompt token, scoring over the floor, and the
stage with the likelihood over the stage without it. Only a quiet machine's ratios count.

    .venv/bin/python -m bench.measure_cost [--model DIR] [--twin DIR] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402

from autotune.candidates.data import load_dataset  # noqa: E402
from autotune.evaluators.label_scoring import best_label, encode_labels, label_scores  # noqa: E402
from autotune.evaluators.measurement import Benchmark, benchmark  # noqa: E402
from autotune.evaluators.runtime import load_model, special_ids  # noqa: E402
from autotune.spaces import SPACES_DIR, load_space  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.lib.tiny_models import DEFAULT_CACHE, smollm2_int4  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--twin", type=Path, help="the twin's model (default: --model)")
    parser.add_argument("--space", type=Path, default=SPACES_DIR / "smollm2.yaml")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    return parser.parse_args()


def prefill(model, prompt: list[int]) -> None:
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + 1, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(prompt)
    np.asarray(generator.get_output("logits"))


def timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def spread(values: list[float], scale: float, unit: str) -> str:
    scaled = [v * scale for v in values]
    return f"{statistics.median(scaled):.3g} {unit} ({min(scaled):.3g} to {max(scaled):.3g})"


def main() -> int:
    args = parse_args()
    space = load_space(args.space, "cpu")
    dataset = load_dataset(space)
    model_dir = args.model or smollm2_int4(args.cache)[0]
    loaded = load_model(model_dir, "cpu", space.latency.threads)
    prompts = [loaded.encode(e.prompt) for e in dataset.eval]
    eos, _ = special_ids(model_dir)
    labels = encode_labels(loaded.tokenizer, dataset.labels, eos, dataset.label_texts)
    examples, tokens = len(prompts), sum(len(p) for p in prompts)
    model = loaded.model
    print(
        f"{model_dir}: {examples} eval prompts, {tokens} prompt tokens "
        f"(mean {tokens / examples:.1f}), {len(labels)} labels of "
        f"{[len(t) for t in labels]} tokens with EOS; {space.latency.threads} threads"
    )
    floor, pruned, full = [], [], []
    stages: dict[str, list[float]] = {"before": [], "twin": [], "with_twin": []}
    last: dict[str, dict[str, float]] = {}

    def stage(name: str, folder: Path, **likelihood) -> Benchmark:
        result = benchmark(
            folder,
            "cpu",
            space.latency,
            dataset.eval,
            dataset.labels,
            label_texts=dataset.label_texts,
            **likelihood,
        )
        stages[name].append(sum(result.seconds.values()))
        last[name] = result.seconds
        return result

    twin_dir = args.twin or model_dir
    for _ in range(args.rounds):
        floor.append(timed(lambda: [prefill(model, p) for p in prompts]))
        pruned.append(timed(lambda: [best_label(model, p, labels) for p in prompts]))
        full.append(timed(lambda: [label_scores(model, p, labels) for p in prompts]))
        stage("before", model_dir, likelihood=False)
        twin = stage("twin", twin_dir, keep_topk=True).topk
        stage("with_twin", model_dir, twin=twin)
    print(f"rounds: {args.rounds}, alternating; nothing else was started by this script")
    for name, values in (
        ("floor: one prompt pass", floor),
        ("label scoring (best_label)", pruned),
        ("every label in full", full),
    ):
        print(
            f"{name}: {spread(values, 1e3 / examples, 'ms/example')}, "
            f"{spread(values, 1e3 / tokens, 'ms/prompt token')}, "
            f"{spread([tokens / v for v in values], 1, 'prompt tokens/s')}"
        )
    ratio = [p / f for p, f in zip(pruned, floor, strict=True)]
    print(f"label scoring over the floor: {spread(ratio, 1, 'x')}")
    for name, what in (
        ("before", "measure stage without the likelihood"),
        ("twin", f"the twin's ({twin_dir.name}) with nll and its top-k kept"),
        ("with_twin", "a quantised sibling's with nll, kl and top1_agree"),
    ):
        print(
            f"{what}: {spread(stages[name], 1, 's')}; last round: "
            f"{', '.join(f'{k} {v:.2f} s' for k, v in last[name].items())}"
        )
    over = {
        name: [a / b for a, b in zip(stages[name], stages["before"], strict=True)]
        for name in ("twin", "with_twin")
    }
    print(
        f"over the stage without the likelihood: the twin's {spread(over['twin'], 1, 'x')}, "
        f"a sibling's {spread(over['with_twin'], 1, 'x')}"
    )
    seconds = {"floor": floor, "best_label": pruned, "every_label": full, **stages}
    figures = {"model": model_dir, "twin": twin_dir, "examples": examples, "prompt_tokens": tokens}
    figures |= {"seconds_per_round": seconds, "scoring_over_floor": ratio}
    figures |= {"stage_over_before": over}
    write_result("measure_cost", figures, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
