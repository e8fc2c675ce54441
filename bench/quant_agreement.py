"""Whether the agreement with the unquantised twin tells int4 exports apart where accuracy cannot.

One SmolLM2 training (spaces/smollm2.yaml's tone data: its train split, its 256 eval examples;
LoRA r 32, learning rate 1.35e-3), merged, exported at fp32 (the twin) and at int4 three ways:
the builder's default (blocks of 32), `k_quant_last`, and the default with blocks of 128. Each
export is measured as a study measures it (`benchmark`): the twin keeps its top-k log-probs,
every int4 export gets kl and top1_agree against them. Then, for every pair of int4 exports,
on the same 256 examples: McNemar's exact p on right/wrong labels beside the Wilcoxon
signed-rank p on per-example kl and on per-example top1_agree (evaluators/paired.py).

With `--check-k N`, also what the top-k approximation loses: on the first N eval examples, the
KL of the int4 default export from the fp32 twin over the whole vocabulary (float64) against the
lumped figure (evaluators/likelihood.py, TopK) for k = 8, 32 and 128.

The p-values do not depend on timing, so the machine need not be quiet. The training, merge and
exports are cached in bench/.cache (`--cache`).

    .venv/bin/python -m bench.quant_agreement [--cache DIR] [--check-k 32]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402

from autotune.candidates.base import resolve_base  # noqa: E402
from autotune.candidates.data import load_dataset  # noqa: E402
from autotune.candidates.export import ExportParams  # noqa: E402
from autotune.candidates.model_check import check_base  # noqa: E402
from autotune.evaluators.measurement import Benchmark, benchmark  # noqa: E402
from autotune.evaluators.paired import mcnemar_exact, wilcoxon_paired  # noqa: E402
from autotune.search.params import train_params, with_defaults  # noqa: E402
from autotune.spaces import SPACES_DIR, LatencySection, load_space  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.lib.tiny_models import (  # noqa: E402
    DEFAULT_CACHE,
    cached_export,
    cached_merged,
    stage_cache,
)

KNOBS = {"lora_r": 32, "learning_rate": 1.35e-3}
TWIN = "fp32"
EXPORTS: dict[str, dict] = {
    TWIN: {"precision": "fp32"},
    "int4 default (block 32)": {"precision": "int4"},
    "int4 k_quant_last": {"precision": "int4", "int4_algo": "k_quant_last"},
    "int4 block 128": {"precision": "int4", "int4_block_size": 128},
}
# Latency is not what this bench is about: the fewest repeats a measurement takes.
LATENCY = LatencySection(prompt_tokens=16, new_tokens=2, warmup=1, repeats=3, threads=2)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", type=Path, default=SPACES_DIR / "smollm2.yaml")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--check-k", type=int, default=0, metavar="N", help="examples (0: none)")
    return parser.parse_args()


def trained_merged(space_path: Path, cache_dir: Path) -> tuple[Path, str]:
    """The space's base fine-tuned with KNOBS, merged (cached): its folder and cache key."""
    import torch

    space = load_space(space_path, "cpu")
    torch.set_num_threads(space.train.threads or 2)
    dataset = load_dataset(space)
    cache = stage_cache(cache_dir)
    base = resolve_base(space, dataset, cache)
    check_base(space, base.path)  # resolves the default target modules, as a study does
    training = train_params(with_defaults(KNOBS, space), space)
    return cached_merged(cache, base, dataset, training)


def k_check(twin_dir: Path, model_dir: Path, examples: list, labels, texts) -> dict:
    """Per k, the mean lumped KL and the mean full-vocabulary KL over `examples`' positions."""
    from autotune.evaluators.label_scoring import encode_labels, reference_tokens
    from autotune.evaluators.likelihood import lumped_kl, position_figures, teacher_forced, top_k
    from autotune.evaluators.runtime import load_model, special_ids

    twin, model = load_model(twin_dir, "cpu", 2), load_model(model_dir, "cpu", 2)
    eos, _ = special_ids(twin_dir)
    label_tokens = encode_labels(twin.tokenizer, labels, eos, texts)

    def log_softmax(logits: np.ndarray) -> np.ndarray:
        shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))

    full, lumped, mass = [], {k: [] for k in (8, 32, 128)}, []
    for example in examples:
        reference = reference_tokens(twin.tokenizer, example, labels, label_tokens, eos, texts)
        sequence = twin.encode(example.prompt) + reference
        p_logits, q_logits = (
            teacher_forced(twin.model, sequence),
            teacher_forced(model.model, sequence),
        )
        p, q = log_softmax(p_logits), log_softmax(q_logits)
        full.append(float((np.exp(p) * (p - q)).sum(axis=-1).mean()))
        lse = position_figures(p_logits.astype(np.float32), np.asarray(sequence[1:]))[0]
        for k, found in lumped.items():
            ids, log_probs = top_k(p_logits.astype(np.float32), lse, k)
            q_top = np.take_along_axis(q, ids.astype(np.int64), axis=-1)
            found.append(float(lumped_kl(log_probs, q_top).mean()))
            if k == 32:
                mass.append(float(np.exp(log_probs.astype(np.float64)).sum(axis=-1).mean()))
    print(f"KL over the whole vocabulary, {len(examples)} examples: {np.mean(full):.4f} nats/token")
    print(f"the twin's top 32 hold {np.mean(mass):.4f} of its mass on average")
    for k, found in lumped.items():
        gap = np.subtract(full, found)
        print(
            f"k {k}: lumped {np.mean(found):.4f}, full - lumped {gap.mean():.5f} "
            f"(max {gap.max():.5f})"
        )
    return {"full": full, "lumped": lumped, "top32_mass": mass}


def main() -> int:
    args = parse_args()
    space = load_space(args.space, "cpu")
    dataset = load_dataset(space)
    start = time.perf_counter()
    merged, merged_key = trained_merged(args.space, args.cache)
    print(f"trained and merged {KNOBS}: {time.perf_counter() - start:.0f} s", flush=True)
    cache = stage_cache(args.cache)
    results: dict[str, Benchmark] = {}
    for name, options in EXPORTS.items():
        folder = cached_export(cache, merged, merged_key, ExportParams(target="cpu", **options))
        twin = results[TWIN].topk if name != TWIN else None
        results[name] = benchmark(
            folder,
            "cpu",
            LATENCY,
            dataset.eval,
            dataset.labels,
            label_texts=dataset.label_texts,
            twin=twin,
            keep_topk=name == TWIN,
        )
        m = results[name].metrics
        agreement = f", kl {m['kl']:.4f}, top1_agree {m['top1_agree']:.4f}" if "kl" in m else ""
        print(f"{name}: accuracy {m['accuracy']:.4f}, nll {m['nll']:.4f}{agreement}", flush=True)

    table = ["| export | accuracy | nll | kl | top1_agree |", "|---|---|---|---|---|"]
    for name, result in results.items():
        m = result.metrics
        kl, top1 = m.get("kl", 0.0), m.get("top1_agree", 1.0)
        table.append(f"| {name} | {m['accuracy']:.3f} | {m['nll']:.4f} | {kl:.4f} | {top1:.3f} |")
    pairs = [
        "| A | B | accuracy A-B | McNemar p | kl A-B | Wilcoxon p (kl) | top1 A-B | "
        "Wilcoxon p (top1) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    figures: dict = {"knobs": KNOBS, "examples": len(dataset.eval), "exports": {}, "pairs": []}
    for name, result in results.items():
        assert result.accuracy is not None and result.likelihood is not None
        figures["exports"][name] = {
            "options": EXPORTS[name],
            "metrics": {k: v for k, v in result.metrics.items() if not k.startswith("noise")},
            "correct": result.accuracy.to_json()["correct"],
            "likelihood": result.likelihood.to_json(),
        }
    quantised = [name for name in results if name != TWIN]
    for a, b in itertools.combinations(quantised, 2):
        first, second = results[a], results[b]
        assert first.accuracy and second.accuracy and first.likelihood and second.likelihood
        accuracy = mcnemar_exact(first.accuracy.correct, second.accuracy.correct)
        kl = wilcoxon_paired(first.likelihood.kl or [], second.likelihood.kl or [])
        top1 = wilcoxon_paired(
            first.likelihood.top1_agree or [], second.likelihood.top1_agree or []
        )
        pairs.append(
            f"| {a} | {b} | {accuracy.difference:+.3f} | {accuracy.p_value:.3g} | "
            f"{kl.difference:+.4f} | {kl.p_value:.3g} | {top1.difference:+.4f} | "
            f"{top1.p_value:.3g} |"
        )
        figures["pairs"].append(
            {
                "a": a,
                "b": b,
                "mcnemar": asdict(accuracy),
                "wilcoxon_kl": asdict(kl),
                "wilcoxon_top1_agree": asdict(top1),
            }
        )
    print("\n".join(table))
    print()
    print("\n".join(pairs))
    if args.check_k:
        figures["k_check"] = k_check(
            results[TWIN].model_dir,
            results[quantised[0]].model_dir,
            dataset.eval[: args.check_k],
            dataset.labels,
            dataset.label_texts,
        )
    write_result("quant_agreement", figures, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
