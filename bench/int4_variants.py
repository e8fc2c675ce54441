"""What int4 costs a fine-tuned model, and which export options win it back.

Exports one merged model (a trial's `merged` cache entry) at fp32, int8 and several int4
variants with the onnxruntime-genai builder, and measures each the way a study does: label
scoring on the space's eval split (accuracy with its 95% Wilson interval) and greedy decode
latency (median and its distribution-free 95% interval). Also prints what each export did to the
embedding table and the LM head (candidates/export_summary.py).

    .venv/bin/python -m bench.int4_variants --space spaces/smollm2.yaml \
        --merged RUN/cache/merged/KEY

Run it with nothing else on the machine: the latency figures are shared-core figures.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from autotune.candidates.data import load_dataset  # noqa: E402
from autotune.candidates.export import ExportParams, export_onnx  # noqa: E402
from autotune.candidates.export_summary import read_summary  # noqa: E402
from autotune.evaluators.measurement import benchmark  # noqa: E402
from autotune.evaluators.stats import wilson_interval  # noqa: E402
from autotune.spaces import load_space  # noqa: E402
from bench.lib.results import write_result  # noqa: E402

VARIANTS: dict[str, dict] = {
    "fp32": {"precision": "fp32"},
    "int8": {"precision": "int8"},
    "int4 (builder defaults)": {"precision": "int4"},
    "int4 k_quant_last": {"precision": "int4", "int4_algo": "k_quant_last"},
    "int4 rtn_last": {"precision": "int4", "int4_algo": "rtn_last"},
    "int4 unshared embeddings": {"precision": "int4", "shared_embeddings": False},
    "int4 accuracy level 1": {"precision": "int4", "int4_accuracy_level": 1},
    "int4 block 128": {"precision": "int4", "int4_block_size": 128},
}


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, required=True)
    parser.add_argument("--merged", type=Path, required=True, help="a merged model folder")
    parser.add_argument("--only", nargs="*", help="variant names to run (default: all)")
    args = parser.parse_args()
    space = load_space(args.space, "cpu")
    dataset = load_dataset(space)
    n = len(dataset.eval)
    print(f"{args.merged}: {n} eval examples, latency {space.latency.model_dump()}")
    header = "| export | accuracy [95% CI] | decode ms/token p50 [95% CI] | MB | embedding / head |"
    rows = [header, "|---|---|---|---|---|"]
    figures = {}
    with tempfile.TemporaryDirectory(prefix="int4-variants-") as tmp:
        for name, options in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            out = Path(tmp) / name.replace(" ", "_")
            out.mkdir()
            export_onnx(args.merged, ExportParams(target="cpu", **options), out)
            result = benchmark(
                out,
                "cpu",
                space.latency,
                dataset.eval,
                dataset.labels,
                label_texts=dataset.label_texts,
            )
            accuracy = result.metrics["accuracy"]
            low, high = wilson_interval(round(accuracy * n), n)
            p50 = result.metrics["decode_ms.p50"]
            half = result.latency.halfwidth.get("decode_ms", math.inf)
            summary = read_summary(out)
            shared = " (shared)" if summary["shared_embeddings"] else ""
            where = f"{summary['embed_tokens']} / {summary['lm_head']}{shared}"
            size = size_mb(out)
            line = (
                f"| {name} | {accuracy:.3f} [{low:.3f}, {high:.3f}] | {p50:.2f} "
                f"[{p50 * (1 - half):.2f}, {p50 * (1 + half):.2f}] | {size:.0f} | {where} |"
            )
            print(line, flush=True)
            rows.append(line)
            figures[name] = {"accuracy": accuracy, "accuracy_95": (low, high), "size_mb": size}
            figures[name] |= {"decode_ms.p50": p50, "decode_halfwidth": half, "export": summary}
    print("\n".join(rows))
    write_result("int4_variants", figures, args)


if __name__ == "__main__":
    main()
