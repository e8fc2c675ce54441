"""What a precision sibling costs next to a full trial.

Runs `autotune --space SPACE` (fresh run folder; the base comes from the cache when present), or
reads the study of an existing run folder (`--run`), and compares the seconds of each sibling
(export and measurement: the adapter and merged model come from the cache; a sibling stopped by
racing evaluation counts with its partial measurement) with those of each full trial: the whole
training (every rung of it, `train_s`), the merge, the export and the measurement.
Goal: the median sibling takes at most 10% of the median full trial.

Run: .venv/bin/python -m bench.sibling_cost [--space spaces/tiny.yaml] [--trials N] [--cache DIR]
     .venv/bin/python -m bench.sibling_cost --run runs/smollm2-tone
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pandas as pd

from autotune.search.record import read_trials
from bench.lib.results import write_result

GOAL = 0.10
STAGES = ("train", "merge", "export", "measure")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--space", default="spaces/tiny.yaml", help="space file to run")
    parser.add_argument("--trials", type=int, default=12, help="completed trials (default 12)")
    parser.add_argument(
        "--cache", type=Path, default=Path("bench/.cache/siblings"), help="stage cache"
    )
    parser.add_argument("--run", type=Path, help="read this run folder's study instead")
    return parser.parse_args()


def run_study(space: str, out: Path, cache: Path, trials: int) -> None:
    command = [sys.executable, "-m", "autotune", "--space", space, "--out", str(out)]
    command += ["--cache", str(cache), "--trials", str(trials), "--quiet"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def trial_costs(run: Path) -> pd.DataFrame:
    """One row per completed full trial and per sibling (completed or raced), with its seconds."""
    storage = f"sqlite:///{run / 'study.db'}"
    (name,) = optuna.get_all_study_names(storage)
    rows = []
    for record in read_trials(optuna.load_study(study_name=name, storage=storage)):
        raced = record.raced is not None
        sibling = record.sibling_of is not None
        if not (record.complete or (raced and sibling)):
            continue
        seconds = {stage: record.seconds.get(stage, 0.0) for stage in STAGES}
        if not sibling:  # the whole training, every rung of it
            seconds["train"] = record.metrics.get("train_s", seconds["train"])
        rows.append(
            {
                "number": record.number,
                "kind": "sibling" if sibling else "trained",
                "state": "raced" if raced else "done",
                "precision": record.params.get("precision"),
                "lora_r": record.params.get("lora_r"),
                "learning_rate": record.params.get("learning_rate"),
                **seconds,
                "wall": sum(seconds.values()),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = args.run
        if run is None:
            # Only the base may come from the cache: every adapter, export and measurement is new.
            for stage in ("rung", "adapter", "merged", "onnx", "measure"):
                shutil.rmtree(args.cache / stage, ignore_errors=True)
            run = Path(folder) / "run"
            run_study(args.space, run, args.cache, args.trials)
        trials = trial_costs(run)
    print(trials.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    full = trials.loc[trials["kind"] == "trained", "wall"]
    sibling = trials.loc[trials["kind"] == "sibling", "wall"]
    ratio = sibling.median() / full.median()
    print(
        f"\nfull trials: {len(full)}, median {full.median():.2f} s (min {full.min():.2f}, max "
        f"{full.max():.2f}); siblings: {len(sibling)} ({(trials.state == 'raced').sum()} raced), "
        f"median {sibling.median():.2f} s, max {sibling.max():.2f} s"
    )
    verdict = "PASS" if ratio <= GOAL else "FAIL"
    print(f"sibling / full (medians): {ratio:.1%} (goal <= {GOAL:.0%}): {verdict}")
    print(f"worst sibling / median full: {sibling.max() / full.median():.1%}")
    figures = {"sibling_over_full": ratio, "worst_sibling_over_full": sibling.max() / full.median()}
    figures |= {"full_median_s": full.median(), "sibling_median_s": sibling.median()}
    figures |= {"passed": ratio <= GOAL, "trials": trials.to_dict("records")}
    write_result("sibling_cost", figures, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
