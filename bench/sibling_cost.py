"""What a precision sibling costs next to a full trial, on the embedded tiny space.

Runs `autotune --space spaces/tiny.yaml` (fresh run folder; the tiny base comes from the cache
when present) and reads trials.csv: the wall time of each trial's stages (train, merge, export,
measure) for the trials that trained their adapter and for their siblings, which reuse it.
Goal: a sibling takes at most 10% of the wall time of a full trial.

Run: .venv/bin/python bench/sibling_cost.py [--trials N] [--cache DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

GOAL = 0.10
STAGES = ["seconds.train", "seconds.merge", "seconds.export", "seconds.measure"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12, help="completed trials (default 12)")
    parser.add_argument(
        "--cache", type=Path, default=Path("bench/.cache/siblings"), help="stage cache"
    )
    return parser.parse_args()


def run_study(out: Path, cache: Path, trials: int) -> pd.DataFrame:
    command = [sys.executable, "-m", "autotune", "--space", "spaces/tiny.yaml", "--out", str(out)]
    command += ["--cache", str(cache), "--trials", str(trials), "--quiet"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    table = pd.read_csv(out / "trials.csv")
    return table[table["state"] == "COMPLETE"]


def main() -> int:
    args = parse_args()
    # Only the base may come from the cache: every adapter, export and measurement is new.
    for stage in ("adapter", "merged", "onnx", "measure"):
        shutil.rmtree(args.cache / stage, ignore_errors=True)
    with tempfile.TemporaryDirectory() as folder:
        trials = run_study(Path(folder) / "run", args.cache, args.trials)
    trials = trials.assign(wall=trials[STAGES].sum(axis=1))
    trials["kind"] = trials["sibling_of"].isna().map({True: "trained", False: "sibling"})
    columns = ["number", "kind", "precision", "lora_r", "learning_rate", *STAGES, "wall"]
    print(trials[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    full = trials.loc[trials["kind"] == "trained", "wall"]
    sibling = trials.loc[trials["kind"] == "sibling", "wall"]
    ratio = sibling.median() / full.median()
    print(
        f"\nfull trials: {len(full)}, median {full.median():.2f} s; siblings: {len(sibling)}, "
        f"median {sibling.median():.2f} s, max {sibling.max():.2f} s"
    )
    verdict = "PASS" if ratio <= GOAL else "FAIL"
    print(f"sibling / full (medians): {ratio:.1%} (goal <= {GOAL:.0%}): {verdict}")
    print(f"worst sibling / median full: {sibling.max() / full.median():.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
