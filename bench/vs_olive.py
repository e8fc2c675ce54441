"""One candidate, made by Olive and by autotune one after the other: the whole commands compared,
each broken down into its parts, and both models scored by one scorer.

The peer: Olive 0.13.0 (`olive run`: LoRA -> MergeAdapterWeights -> ModelBuilder int4) in its
own venv, `bench/.olive-venv`, with `requests` and onnxruntime-genai 0.14.1 (its ModelBuilder
pass needs `onnxruntime_genai.models.quantized_model`, which 0.18 lacks). Olive is never a
dependency of autotune. Create the venv once (a few minutes; PyPI's torch wheel here is the CPU
one):

    python3 -m venv bench/.olive-venv && bench/.olive-venv/bin/pip install torch==2.13.0 \\
        && bench/.olive-venv/bin/pip install olive-ai==0.13.0 requests onnxruntime-genai==0.14.1 \\
           onnxruntime==1.32.0 transformers==5.24.0 peft==0.21.2 accelerate==1.15.0 datasets

Both train SmolLM2-135M-Instruct (the dequantised GGUF of spaces/smollm2.yaml) on the same 512
train rows (autotune's split, capped) with the same knobs: r 16, alpha 32, dropout 0.05, lr 4e-4,
one epoch, batch 8, q_proj and v_proj, int4, 2 threads. Olive's data as the reference workflow's
config has it (`unpadded`, the reference row): one example per sequence (`line-by-line`), at
most 256 tokens, no padding to a fixed length (`pad_to_max_len: false`), trained in fp32. Other
Olive rows (`--olive`): `padded` (every row padded to 64 tokens, the earlier comparison's), and
`unpadded-bf16` (Olive's own default `torch_dtype`, bfloat16, which the reference config leaves
unset). autotune runs its default `train.dtype: auto` (bf16 on a CPU with bf16 instructions:
candidates/training_model.py) unless `--autotune-dtype` says otherwise.

What each command does, and what the breakdown shows of it:
- `olive run`: loads the model, tokenises the rows, trains LoRA with the Hugging Face Trainer (no
  evaluation), merges the adapter, builds the int4 ONNX model. It measures nothing. Breakdown:
  each pass's seconds from its footprint.json; `other` is start-up, data and saving.
- `autotune` with a one-configuration space: validates the space and the data (the preflight)
  and resolves the base, both cached before the timing as a second study would find them; then
  measures the untrained base (export, accuracy, latency: the report's comparison row), trains
  (its own loop, the eval loss on a 64-example subset), merges, exports int4, measures the
  candidate's accuracy on the 256 eval rows and its latency, and writes the report. Breakdown:
  the base reference's and each trial's stage seconds from the study; `other` is start-up,
  the study's bookkeeping and the report. It also states its trials (how many for one
  configuration) and its training's seconds per step and tokens per second.

Both ONNX models are then scored on the same 256 eval rows by bench/recipes.py's scorer (label +
EOS and label only), outside the timing; autotune's against Olive's reference row by McNemar's
exact test on the same examples, and timed by autotune's latency evaluator (64 + 16 tokens, 10
repeats, 2 threads).

    .venv/bin/python -m bench.vs_olive [--runs 2] [--olive unpadded padded unpadded-bf16]

`--max-steps` and `--score-rows` make a smoke run of the pipeline (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
from autotune.evaluators.paired import mcnemar_exact  # noqa: E402
from autotune.spaces import LatencySection  # noqa: E402
from bench.lib.olive_config import OLIVE_VARIANTS, olive_config  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.recipes import correct, smollm2  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OLIVE = REPO / "bench" / ".olive-venv" / "bin" / "olive"
LATENCY = LatencySection(prompt_tokens=64, new_tokens=16, warmup=2, repeats=10, threads=2)
SCORERS = ("label+EOS", "label only")
REFERENCE_VARIANT = "unpadded"


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, the peak RSS of the command (MiB, by GNU time: this process's own memory
    would otherwise count, as Linux keeps a process's peak across fork and exec) and its
    standard output."""
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
    if done.returncode != 0:
        tail = done.stdout[-2000:] + done.stderr[-2000:]
        sys.exit(f"{' '.join(command[:4])} failed ({done.returncode}):\n{tail}")
    return wall, peak, done.stdout


def scored(model_dir: Path, examples, labels) -> tuple[dict, dict[str, list[bool]]]:
    """The row's accuracy, latency and size, and the per-example correctness behind it."""
    right = correct(model_dir, examples, labels)
    latency = measure_latency(model_dir, "cpu", [e.prompt for e in examples], LATENCY)
    figures = {
        **{name: sum(r) / len(r) for name, r in right.items()},
        "decode ms/token": latency.stats["decode_ms"]["p50"],
        "size MB": sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file()) / 2**20,
    }
    return figures, right


def olive_breakdown(out: Path, wall: float) -> dict[str, float]:
    """Seconds of each Olive pass (its footprint.json) and the rest of the wall."""
    parts: dict[str, float] = {}
    footprint = out / "footprint.json"
    if footprint.is_file():
        for node in json.loads(footprint.read_text()).values():
            if node.get("from_pass") and node.get("end_time"):
                name = str(node["from_pass"]).lower()
                parts[name] = parts.get(name, 0.0) + node["end_time"] - node["start_time"]
    parts["other"] = wall - sum(parts.values())
    return parts


def run_olive(variant: str, root: Path, base, dataset, args) -> tuple[dict, dict, dict]:
    """One `olive run`: its row, its breakdown and its per-example correctness."""
    train_file = root / "train.jsonl"
    train_file.write_text(
        "".join(json.dumps({"phrase": e.text, "tone": e.completion}) + "\n" for e in dataset.train)
    )
    out = root / f"olive-{variant}"
    config = root / f"olive-{variant}.json"
    olive = olive_config(base.path, train_file, out, variant, args.max_steps)
    config.write_text(json.dumps(olive, indent=1))
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    wall, peak, _ = timed([str(OLIVE), "run", "--config", str(config)], env)
    model = next(out.rglob("genai_config.json")).parent
    figures, right = scored(model, dataset.eval[: args.score_rows], dataset.labels)
    row = {"tool": f"Olive 0.13.0 {variant}", "wall s": wall, "peak RSS MiB": peak, **figures}
    return row, olive_breakdown(out, wall), right


def autotune_breakdown(out: Path, stages: Path, space_name: str, wall: float) -> dict:
    """Seconds of the base reference and of each trial's stages (from the study), the trials
    it ran, and its training's pace (from the adapter's record)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=space_name, storage=f"sqlite:///{out / 'study.db'}")
    parts: dict[str, float] = {}
    reference = study.user_attrs.get("reference") or {}
    for stage, seconds in (reference.get("seconds") or {}).items():
        parts[f"base reference {stage}"] = seconds
    states = [t.state.name for t in study.trials]
    for trial in study.trials:
        for stage, seconds in (trial.user_attrs.get("seconds") or {}).items():
            parts[stage] = parts.get(stage, 0.0) + seconds
    parts["other"] = wall - sum(parts.values())
    pace = {}
    infos = sorted(stages.glob("*/*/autotune_train.json"), key=lambda p: p.stat().st_mtime)
    if infos:  # the last part of the training (a rung's part holds the steps before it too)
        info = json.loads(infos[-1].read_text())
        steps = info.get("step_times") or []
        if steps and info.get("tokens"):
            pace = {
                "dtype": info["params"]["dtype"],
                "steps": len(steps),
                "step_s_median": statistics.median(steps),
                "tokens_per_s": info["tokens"] / sum(steps),
            }
    return {
        "seconds": parts,
        "trials": len(states),
        "states": {s: states.count(s) for s in sorted(set(states))},
        "training": pace,
    }


def run_autotune(root: Path, args, dataset) -> tuple[dict, dict, dict]:
    """One `autotune` study of one configuration: its row, breakdown and correctness."""
    out = root / "autotune"
    trial_space = autotune_space(args.cache, args.autotune_dtype, args.max_steps)
    space_name = yaml.safe_load(trial_space.read_text())["name"]
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
    # A fresh cache for the study (so it trains, merges, exports and measures), holding the base
    # and the preflight verdicts built above.
    stages = root / "stages"
    stages.mkdir()
    for stage in ("base", "preflight"):
        (stages / stage).symlink_to(args.cache / "stages" / stage)
    prepare[prepare.index(str(args.cache / "stages"))] = str(stages)
    command = [*prepare[:-1], "--quiet", "--json"]
    wall, peak, stdout = timed(command)
    selected = (json.loads(stdout).get("selected") or {}).get("path")
    model = selected or completed_model(out, space_name)  # a collapsed one is never selected
    if model is None:
        sys.exit(f"autotune completed no trial:\n{stdout[-2000:]}")
    figures, right = scored(Path(model), dataset.eval[: args.score_rows], dataset.labels)
    breakdown = autotune_breakdown(out, stages, space_name, wall)
    row = {
        "tool": f"autotune (train.dtype {args.autotune_dtype})",
        "wall s": wall,
        "peak RSS MiB": peak,
        "trials": breakdown["trials"],
        "selected": selected is not None,
        **figures,
    }
    return row, breakdown, right


def completed_model(out: Path, space_name: str) -> str | None:
    """The model folder of the study's last completed trial, if any."""
    import optuna

    study = optuna.load_study(study_name=space_name, storage=f"sqlite:///{out / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return done[-1].user_attrs.get("onnx_dir") if done else None


def paired(a: dict[str, list[bool]], b: dict[str, list[bool]]) -> dict[str, dict]:
    """autotune (a) against Olive's reference row (b), per scorer: McNemar's exact test."""
    found = {}
    for name in SCORERS:
        test = mcnemar_exact(a[name], b[name])
        found[name] = {
            "difference": test.difference,
            "p_value": test.p_value,
            "distinguishable": test.distinguishable,
        }
    return found


def markdown(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [
            f"{row[k]:.3g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--olive",
        nargs="+",
        choices=list(OLIVE_VARIANTS),
        default=["unpadded", "padded"],
        help="Olive's rows; the first is the one autotune is held against",
    )
    parser.add_argument("--autotune-dtype", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / ".cache" / "vs-olive")
    parser.add_argument(
        "--max-steps", type=int, default=None, help="a smoke run: both stop training at this step"
    )
    parser.add_argument(
        "--score-rows", type=int, default=None, help="a smoke run: score the first N eval rows"
    )
    args = parser.parse_args()
    args.cache = args.cache.resolve()  # the study's cache links into it
    if not OLIVE.is_file():
        sys.exit(f"no Olive at {OLIVE}: create bench/.olive-venv first (see this file's docstring)")
    _, dataset, base = smollm2(args.cache)
    rows, breakdowns, comparisons = [], [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="vs-olive-") as tmp:
            root = Path(tmp)
            olive_walls, olive_right = {}, {}
            for variant in args.olive:
                row, parts, right = run_olive(variant, root, base, dataset, args)
                rows.append({**row, "run": run + 1})
                breakdowns.append({"tool": row["tool"], "run": run + 1, "seconds": parts})
                olive_walls[variant], olive_right[variant] = row["wall s"], right
                print(rows[-1], parts, flush=True)
            row, parts, right = run_autotune(root, args, dataset)
            rows.append({**row, "run": run + 1})
            breakdowns.append({"tool": row["tool"], "run": run + 1, **parts})
            print(rows[-1], parts, flush=True)
            held = args.olive[0]
            comparisons.append(
                {
                    "run": run + 1,
                    "against": f"Olive {held}",
                    "wall_ratio": row["wall s"] / olive_walls[held],
                    "accuracy": paired(right, olive_right[held]),
                }
            )
            print(comparisons[-1], flush=True)
    print(markdown(rows))
    for item in breakdowns:
        seconds = ", ".join(f"{k} {v:.1f}" for k, v in item["seconds"].items())
        extra = {k: v for k, v in item.items() if k not in ("tool", "run", "seconds")}
        print(f"- {item['tool']}, run {item['run']}: {seconds}" + (f"; {extra}" if extra else ""))
    for item in comparisons:
        print(f"- run {item['run']}: autotune / {item['against']} wall {item['wall_ratio']:.2f}x")
    figures = {"rows": rows, "breakdowns": breakdowns, "comparisons": comparisons}
    write_result("vs_olive", figures, args)


def autotune_space(cache: Path, dtype: str, max_steps: int | None = None) -> Path:
    """The SmolLM2 space as one configuration with the Olive knobs, int4, no siblings: the
    space a user translating Olive's config would write."""
    raw = yaml.safe_load((REPO / "spaces" / "smollm2.yaml").read_text())
    raw["data"].update(files=str(REPO / "spaces" / "data" / "tones.jsonl"), max_train=512)
    raw["train"]["target_modules"] = ["q_proj", "v_proj"]
    raw["train"]["dtype"] = dtype
    if max_steps is not None:
        raw["train"]["max_steps"] = max_steps
    raw["search"] = {"lora_r": 16, "lora_alpha": 32.0, "learning_rate": 4e-4, "precision": "int4"}
    raw["strategy"] = {"prune": False, "expand": []}
    raw["budget"] = {"trials": 1}
    path = cache / "trial.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


if __name__ == "__main__":
    main()
