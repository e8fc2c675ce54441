"""One candidate, made by Olive and by autotune one after the other, measured with one scorer.

The peer: Olive 0.13.0 (`olive run`: LoRA -> MergeAdapterWeights -> ModelBuilder int4) in its
own venv, `bench/.olive-venv`, with `requests` and onnxruntime-genai 0.14.1 (its ModelBuilder
pass needs `onnxruntime_genai.models.quantized_model`, which 0.18 lacks). Olive is never a
dependency of autotune. Create the venv once (a few minutes):

    python3 -m venv bench/.olive-venv && bench/.olive-venv/bin/pip install torch==2.13.0 \\
        && bench/.olive-venv/bin/pip install olive-ai==0.13.0 requests onnxruntime-genai==0.14.1 \\
           onnxruntime==1.32.0 transformers==5.24.0 peft==0.21.2 accelerate==1.15.0 datasets

Both train SmolLM2-135M-Instruct (the dequantised GGUF of spaces/smollm2.yaml) on the same 512
train rows (autotune's split, capped) with the same knobs: r 16, alpha 32, dropout 0.05, lr 4e-4,
one epoch, batch 8, fp32, q_proj and v_proj, int4, 2 threads. autotune's trial is one
`autotune --trials 1` in a run folder whose cache already holds the base and the preflight (set-up
the Olive run does not have to do either). Its wall also holds the study's start and, on the first
run, the untrained base's measurement (cached after); `trial s` is the trial's stages alone:
train, merge, export and measure (accuracy on the 256 eval rows and latency). Both ONNX models are
then scored on the same 256 eval rows by bench/recipes.py's scorer (label + EOS and label only)
and timed by autotune's latency evaluator (64 + 16 tokens, 10 repeats, 2 threads).

    .venv/bin/python -m bench.vs_olive [--runs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import yaml  # noqa: E402

from autotune.evaluators.latency import measure_latency  # noqa: E402
from autotune.spaces import LatencySection  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.recipes import score, smollm2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OLIVE = REPO / "bench" / ".olive-venv" / "bin" / "olive"
LATENCY = LatencySection(prompt_tokens=64, new_tokens=16, warmup=2, repeats=10, threads=2)


def olive_config(base: Path, train_file: Path, out: Path) -> dict:
    """Olive's LoRA -> merge -> ModelBuilder int4 workflow on the same rows and knobs."""
    template = "### Text: {phrase}\n### The tone is:\n{tone}"
    return {
        "input_model": {"type": "HfModel", "model_path": str(base)},
        "systems": {
            "local_system": {
                "type": "LocalSystem",
                "accelerators": [
                    {"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}
                ],
            }
        },
        "data_configs": [
            {
                "name": "train_data",
                "type": "HuggingfaceContainer",
                "load_dataset_config": {
                    "data_name": "json",
                    "data_files": [str(train_file)],
                    "split": "train",
                },
                # One example per sequence, padded to 64 tokens (the longest row is 48 with BOS
                # and EOS). Olive's default strategy joins all rows and cuts them into
                # max_seq_len chunks: 512 rows became 7 steps instead of 64.
                "pre_process_data_config": {
                    "text_template": template,
                    "strategy": "line-by-line",
                    "max_seq_len": 64,
                    "pad_to_max_len": True,
                },
                "dataloader_config": {"batch_size": 8},
            }
        ],
        "passes": {
            "lora": {
                "type": "LoRA",
                "r": 16,
                "alpha": 32,
                "lora_dropout": 0.05,
                "target_modules": ["q_proj", "v_proj"],
                "torch_dtype": "float32",
                "train_data_config": "train_data",
                "training_args": {
                    "learning_rate": 4e-4,
                    "num_train_epochs": 1,
                    "per_device_train_batch_size": 8,
                    "gradient_checkpointing": False,
                    "seed": 0,
                },
            },
            "merge": {"type": "MergeAdapterWeights"},
            "builder": {"type": "ModelBuilder", "precision": "int4"},
        },
        "host": "local_system",
        "target": "local_system",
        "output_dir": str(out),
        "cache_dir": str(out / "cache"),
        "log_severity_level": 3,
    }


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, the peak RSS of the command (MiB, by GNU time: this process's own memory
    would otherwise count, as Linux keeps a process's peak across fork and exec) and its output
    tail."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(peak_file), *command],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - start
        peak = int(peak_file.read_text().split()[-1]) / 1024
    tail = done.stdout[-2000:] + done.stderr[-2000:]
    if done.returncode != 0:
        sys.exit(f"{command[0]} failed ({done.returncode}):\n{tail}")
    return wall, peak, tail


def measured(model_dir: Path, examples, labels) -> dict:
    accuracy = score(model_dir, examples, labels)
    latency = measure_latency(model_dir, "cpu", [e.prompt for e in examples], LATENCY)
    return {
        **accuracy,
        "decode ms/token": latency.stats["decode_ms"]["p50"],
        "size MB": sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file()) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / ".cache" / "vs-olive")
    args = parser.parse_args()
    if not OLIVE.is_file():
        sys.exit(f"no Olive at {OLIVE}: create bench/.olive-venv first (see this file's docstring)")
    space, dataset, base = smollm2(args.cache)
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="vs-olive-") as tmp:
            root = Path(tmp)
            train_file = root / "train.jsonl"
            train_file.write_text(
                "".join(
                    json.dumps({"phrase": e.text, "tone": e.completion}) + "\n"
                    for e in dataset.train
                )
            )
            config = root / "olive.json"
            config.write_text(
                json.dumps(olive_config(base.path, train_file, root / "olive"), indent=1)
            )
            env = {**os.environ, "OMP_NUM_THREADS": "2"}
            wall, peak, _ = timed([str(OLIVE), "run", "--config", str(config)], env)
            model = next((root / "olive").rglob("genai_config.json")).parent
            big = {f.name: round(f.stat().st_size / 1e6) for f in model.iterdir() if f.is_file()}
            print(f"Olive's model folder {model}: {big} (MB)", flush=True)
            rows.append(
                {
                    "tool": f"Olive 0.13.0, run {run + 1}",
                    "wall s": wall,
                    "peak RSS MiB": peak,
                    **measured(model, dataset.eval, dataset.labels),
                }
            )
            print(rows[-1], flush=True)
            out = root / "autotune"
            trial_space = autotune_space(space, args.cache)
            prepare = [
                sys.executable,
                "-m",
                "autotune",
                "--space",
                str(trial_space),
                "--target",
                "cpu",
                "--out",
                str(out),
                "--cache",
                str(args.cache / "stages"),
                "--dry-run",
            ]
            timed(prepare)  # the base and the preflight into the cache, outside the timing
            # A fresh cache for the trial (so it trains, merges and exports), holding the base and
            # the preflight verdicts built above.
            stages = root / "stages"
            stages.mkdir()
            for stage in ("base", "preflight"):
                (stages / stage).symlink_to(args.cache / "stages" / stage)
            prepare[prepare.index(str(args.cache / "stages"))] = str(stages)
            command = [*prepare[:-1], "--trials", "1", "--quiet"]
            wall, peak, _ = timed(command)
            trial = json.loads((out / "trials" / "0" / "metrics.json").read_text())
            rows.append(
                {
                    "tool": f"autotune, run {run + 1}",
                    "wall s": wall,
                    "peak RSS MiB": peak,
                    "train s": trial["seconds"]["train"],
                    "trial s": sum(trial["seconds"].values()),
                    **measured(Path(trial["onnx_dir"]), dataset.eval, dataset.labels),
                }
            )
            print(rows[-1], flush=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        cells = [
            f"{row[k]:.3g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys
        ]
        print("| " + " | ".join(cells) + " |")
    write_result("vs_olive", {"rows": rows}, args)


def autotune_space(space, cache: Path) -> Path:
    """The SmolLM2 space as one trial with the Olive knobs, int4, no siblings."""
    raw = yaml.safe_load((REPO / "spaces" / "smollm2.yaml").read_text())
    raw["data"].update(files=str(REPO / "spaces" / "data" / "tones.jsonl"), max_train=512)
    raw["train"]["target_modules"] = ["q_proj", "v_proj"]
    raw["search"] = {"lora_r": 16, "lora_alpha": 32.0, "learning_rate": 4e-4, "precision": "int4"}
    raw["strategy"] = {"prune": False, "expand": []}
    raw["budget"] = {"trials": 1}
    path = cache / "trial.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


if __name__ == "__main__":
    main()
