"""Wall time of one study with 2 local workers against 1, on this machine's CPU cores.

Runs the embedded tiny space with every trial training its own adapter (no precision siblings,
no pruning, 1 training thread, 2 epochs, 10 latency repeats), twice:
1. one process on one core: `taskset -c 0 autotune ...` (the default run-folder study);
2. `autotune ... --storage journal:... --workers 2` (or `--storage URL`): two workers, each
   pinned to one core, sharing the study.
Each starts from a stage cache holding only the tiny base, built once beforehand and not timed:
the base is a one-off of the embedded demo (a real study resolves a downloaded model), and the
question is what a second worker does to the trials. Goal: 2 workers take at most 0.65x the
wall time of 1 worker. It also checks the guarantees: exactly the budget of completed trials, and
no configuration completed twice.

`--as-is` runs the tiny space as it ships instead (precision siblings, successive halving, its
threads and epochs), one worker on every core against two workers on one core each: what a user
gains from `--workers 2` here, and that no sibling is paused at a rung (goal: 2 workers faster).

Run: .venv/bin/python -m bench.workers_speedup [--trials 12] [--storage URL] [--as-is]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna
import yaml

from bench.lib.results import write_result

GOAL = 0.65
REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12, help="completed trials (default 12)")
    parser.add_argument("--epochs", type=float, default=2.0, help="training epochs (default 2)")
    parser.add_argument(
        "--storage", help="shared storage for the 2 workers (default: a journal file)"
    )
    parser.add_argument(
        "--as-is",
        action="store_true",
        help="the tiny space as it ships (its strategy: precision siblings, successive halving; "
        "its threads and epochs), and one worker on every core, as a user runs it",
    )
    return parser.parse_args()


def write_space(folder: Path, args: argparse.Namespace) -> Path:
    space = yaml.safe_load((REPO / "spaces" / "tiny.yaml").read_text())
    space["data"]["files"] = str(REPO / "spaces" / "data" / "tones.jsonl")
    space["budget"] = {"trials": args.trials}
    if args.as_is:
        path = folder / "space.yaml"
        path.write_text(yaml.safe_dump(space))
        return path
    space["train"].update({"epochs": args.epochs, "threads": 1})
    space["latency"]["repeats"] = 10
    # Every trial a training of its own, none pruned: pruning decisions depend on the order in
    # which trainings finish, which a second worker changes, and pruned trials do not count.
    space["strategy"] = {"expand": [], "prune": False}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def build_base(space_file: Path, cache: Path) -> float:
    """Build the space's tiny base into `cache` with one thread; the seconds it took."""
    import torch

    from autotune.candidates.base import resolve_base
    from autotune.candidates.cache import StageCache
    from autotune.candidates.data import load_dataset
    from autotune.spaces import load_space

    torch.set_num_threads(1)
    start = time.perf_counter()
    space = load_space(space_file, "cpu")
    resolve_base(space, load_dataset(space), StageCache(cache))
    return time.perf_counter() - start


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def check(
    storage: str | optuna.storages.BaseStorage, trials: int, siblings: bool
) -> tuple[str, bool]:
    """Exactly the budget completed; without siblings each completed trial is a training of its
    own (none completed twice); with them, no sibling was paused at a rung."""
    study = optuna.load_study(study_name="tiny", storage=storage)
    done = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    trained = Counter(t.user_attrs["adapter_key"] for t in done)
    workers = len({t.user_attrs.get("worker") for t in done})
    paused = [
        t.number
        for t in study.get_trials()
        if t.user_attrs.get("sibling_of") is not None
        and (t.user_attrs.get("rung") or {}).get("stopped")
    ]
    ok = len(done) == trials and (not paused if siblings else max(trained.values()) == 1)
    text = f"{len(done)} completed, {len(trained)} trainings, {workers} workers, "
    return text + f"{len(paused)} siblings paused at a rung: " + ("ok" if ok else "WRONG"), ok


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        space = write_space(folder, args)
        seed_cache = folder / "base-cache"
        print(f"tiny base built (not timed) in {build_base(space, seed_cache):.1f} s")
        base = [sys.executable, "-m", "autotune", "--space", str(space), "--quiet"]
        one = folder / "one"
        shutil.copytree(seed_cache, one / "c")
        pin = [] if args.as_is else ["taskset", "-c", "0"]
        one_s = timed([*pin, *base, "--out", str(one), "--cache", str(one / "c")])
        alone, alone_ok = check(f"sqlite:///{one}/study.db", args.trials, args.as_is)
        print(f"1 worker, {'every core' if args.as_is else '1 core'}: {one_s:6.1f} s  ({alone})")
        two = folder / "two"
        storage = args.storage or f"journal:{folder / 'study.journal'}"
        shutil.copytree(seed_cache, two / "c")
        two_cmd = [*base, "--out", str(two), "--cache", str(two / "c"), "--storage", storage]
        two_s = timed([*two_cmd, "--workers", "2"])
        if storage.startswith("journal:"):
            backend = optuna.storages.journal.JournalFileBackend(storage.removeprefix("journal:"))
            opened: str | optuna.storages.BaseStorage = optuna.storages.JournalStorage(backend)
        else:
            opened = storage
        both, both_ok = check(opened, args.trials, args.as_is)
        print(f"2 workers, 1 core each: {two_s:6.1f} s  ({both})")
        shutil.rmtree(folder, ignore_errors=True)
    ratio = two_s / one_s
    goal = 1.0 if args.as_is else GOAL
    verdict = "PASS" if ratio < goal and alone_ok and both_ok else "FAIL"
    print(f"ratio 2 workers / 1 worker: {ratio:.2f} (goal < {goal}): {verdict}")
    figures = {"one_worker_s": one_s, "two_workers_s": two_s, "ratio": ratio}
    figures |= {"one_worker_check": alone, "two_workers_check": both, "passed": verdict == "PASS"}
    write_result("workers_speedup", figures, args)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
