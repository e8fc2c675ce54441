"""How much of the Pareto front does a search find, and at what cost in training and export time?

Ground truth: the 27-point grid (3 LoRA ranks x 3 learning rates x 3 precisions) of the tiny space,
run exhaustively once into a stage cache. Then one real autotune study per strategy and seed runs
on the same space against that cache, long enough to pass half the grid's cost. Each trial is
charged what it would have cost from an empty cache (the ground-truth build cost of each stage it
used first), and for each cost budget (1/6, 1/3, 1/2 of the grid's) a study is scored by the
hypervolume of the trials it completed within that budget, as a fraction of the grid's.

Run: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python bench/search_efficiency.py
     [--cache DIR] [--seeds N] [--samplers default,random,random-sib,nsga2] [--trials 27]
     [--jobs 2] [--fresh] [--fresh-grid]
The bench folder (default bench/.cache/search) holds the space files, the stage cache (stages/),
the grid's run folder (grid/), one run folder per search (runs/) and results.csv.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from search_costs import (  # bench/search_costs.py, beside this script
    GRID_POINTS,
    GRID_STAGES,
    STUDY,
    GroundTruth,
    Job,
    Point,
    ground_truth,
    hypervolume,
    manifests,
    reference_point,
)
from search_tables import (  # bench/search_tables.py, beside this script
    budget_table,
    check_a,
    check_b,
    score,
    search_table,
    summary,
    trial_count_table,
)

from autotune.search.samplers import startup_trials
from autotune.spaces import DEFAULT_SPACE, SPACES_DIR, load_space

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "search"
AUTOTUNE = str(Path(sys.executable).with_name("autotune"))
SEARCH = {
    "lora_r": {"choices": [8, 32, 64]},
    "learning_rate": {"choices": [6.0e-4, 1.9e-3, 6.0e-3]},
    "precision": {"choices": ["fp32", "int8", "int4"]},
    "int4_block_size": 32,
    "int4_accuracy_level": 4,
}
PLAIN = {"expand": [], "prune": False}  # every trial runs as sampled: no siblings, no pruning
STOPPED = re.compile(r"stopped after \d+ (?:failed|pruned) trials in a row")


@dataclass(frozen=True)
class Strategy:
    sampler: str
    strategy: dict[str, Any]  # the space's strategy section ({}: the default one)
    about: str


STRATEGIES = {
    "default": Strategy("tpe", {}, "tpe, siblings, pruning (the default strategy)"),
    "random": Strategy("random", PLAIN, "random, no siblings, no pruning"),
    "random-sib": Strategy("random", {}, "random, siblings, pruning"),
    "nsga2": Strategy("nsga2", {}, "nsga2, siblings, pruning"),
}


# --------------------------------------------------------------------------- running autotune


def space_dict(strategy: dict[str, Any]) -> dict[str, Any]:
    """The tiny space over the 27-point grid, without constraints, with `strategy`."""
    space = yaml.safe_load(DEFAULT_SPACE.read_text())
    space["name"] = STUDY
    space["data"]["files"] = str((SPACES_DIR / space["data"]["files"]).resolve())
    space["search"] = copy.deepcopy(SEARCH)
    space.pop("constraints", None)
    space["budget"] = {"trials": GRID_POINTS}
    if strategy:
        space["strategy"] = dict(strategy)
    return space


def write_space(folder: Path, name: str, strategy: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space_dict(strategy), sort_keys=False))
    return path


def autotune(
    space: Path, out: Path, stages: Path, trials: int, seed: int, sampler: str
) -> tuple[float, str]:
    """One real autotune study, as a subprocess: its wall seconds, and why it stopped before
    `trials` completed trials ('' when it did not). Raises when it fails otherwise."""
    command = [AUTOTUNE, "--space", str(space), "--target", "cpu", "--out", str(out)]
    command += ["--cache", str(stages), "--trials", str(trials), "--seed", str(seed)]
    command += ["--sampler", sampler, "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    stopped = STOPPED.search(done.stderr)
    if done.returncode == 0 or (done.returncode == 1 and stopped):
        return seconds, stopped.group(0) if stopped else ""
    raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")


def run_search(root: Path, job: Job) -> dict[str, Any]:
    """The job's study in a fresh run folder; its wall seconds and stop reason, kept in
    search.json so that a later run reuses the study."""
    out = root / "runs" / job.name
    record_file = out / "search.json"
    if record_file.is_file():
        return json.loads(record_file.read_text())
    shutil.rmtree(out, ignore_errors=True)
    strategy = STRATEGIES[job.strategy]
    space = root / "spaces" / f"{job.strategy}.yaml"
    seconds, stopped = autotune(space, out, root / "stages", job.trials, job.seed, strategy.sampler)
    record = {"seconds": seconds, "stopped": stopped}
    record_file.write_text(json.dumps(record))
    return record


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="bench folder")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per strategy")
    parser.add_argument(
        "--samplers",
        default=",".join(STRATEGIES),
        help=f"strategies to run, comma-separated, among {', '.join(STRATEGIES)}",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=GRID_POINTS,
        help="completed trials each search asks for: enough to pass 1/2 of the grid's cost",
    )
    parser.add_argument("--jobs", type=int, default=2, help="searches run at once")
    parser.add_argument("--fresh", action="store_true", help="rerun the searches")
    parser.add_argument(
        "--fresh-grid",
        action="store_true",
        help="rebuild the ground truth (its run and stage entries; the base is kept) and rerun "
        "the searches",
    )
    args = parser.parse_args()
    args.samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = set(args.samplers) - set(STRATEGIES)
    if unknown or "default" not in args.samplers:
        parser.error(f"--samplers: expected 'default' and others among {list(STRATEGIES)}")
    return args


def prepare(root: Path, fresh: bool, fresh_grid: bool) -> None:
    """The bench folder (ignored by git) and its space files; with `fresh`, no searches, and
    with `fresh_grid`, no grid run and none of its stage entries either."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".gitignore").exists():
        (root / ".gitignore").write_text("*\n")
    write_space(root / "spaces", "plain", PLAIN)
    for name, strategy in STRATEGIES.items():
        write_space(root / "spaces", name, strategy.strategy)
    if fresh or fresh_grid:
        shutil.rmtree(root / "runs", ignore_errors=True)
    if fresh_grid:
        shutil.rmtree(root / "grid", ignore_errors=True)
        for stage in GRID_STAGES:
            shutil.rmtree(root / "stages" / stage, ignore_errors=True)


def run_ground_truth(root: Path) -> None:
    """The whole grid, resumed from its study.db (nothing is rebuilt when it is complete)."""
    print(f"ground truth: the {GRID_POINTS}-point grid in {root / 'grid'} ...", flush=True)
    start = time.perf_counter()
    autotune(root / "spaces" / "plain.yaml", root / "grid", root / "stages", GRID_POINTS, 0, "grid")
    print(f"ground truth: {GRID_POINTS} grid points ready in {time.perf_counter() - start:.0f} s")


def run_searches(root: Path, jobs: list[Job], parallel: int) -> dict[Job, dict[str, Any]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        records = dict(zip(jobs, pool.map(lambda job: run_search(root, job), jobs), strict=True))
    print(f"searches: {len(jobs)} studies ready in {time.perf_counter() - start:.0f} s")
    return records


def describe_truth(truth: GroundTruth, reference: Point) -> None:
    """The grid's costs, its points by training configuration, and its Pareto front."""
    unit = "CPU s" if truth.unit == "cpu_seconds" else "wall s"
    trainings = sorted(truth.train.values())
    print(
        f"costs: manifest {truth.unit} ({unit})"
        + ("" if truth.unit == "cpu_seconds" else ", since some grid manifests lack cpu_seconds")
    )
    print(
        f"grid: {len(trainings)} trainings {sum(trainings):.0f} {unit} ({trainings[0]:.0f} to "
        f"{trainings[-1]:.0f} each, median {statistics.median(trainings):.0f}), merges "
        f"{sum(truth.merge.values()):.0f}, {len(truth.export)} exports "
        f"{sum(truth.export.values()):.0f}, measurements {sum(truth.measure.values()):.0f}; "
        f"total {truth.cost:.0f} {unit} (the tiny base is shared by all and left out)"
    )
    precisions = SEARCH["precision"]["choices"]
    print(f"grid points (accuracy / e2e_ms) by training: {', '.join(precisions)}")
    for r, lr in sorted({k[:2] for k in truth.points}):
        figures = "  ".join("{:.3f} / {:.3f}".format(*truth.points[(r, lr, p)]) for p in precisions)
        train = truth.train[truth.adapters[(r, lr, precisions[0])]]
        print(f"    r {r:>2}, lr {lr:.1e}, train {train:4.0f} {unit}:  {figures}")
    front = [
        k
        for k, p in truth.points.items()
        if not any(dominates(q, p) for q in truth.points.values())
    ]
    print(f"reference point: accuracy {reference[0]:.4f}, e2e_ms {reference[1]:.4f}")
    print("grid Pareto front (lora_r, learning_rate, precision: accuracy, e2e_ms):")
    for key in sorted(front, key=lambda k: -truth.points[k][0]):
        accuracy, ms = truth.points[key]
        print(f"    {key[0]:>2}, {key[1]:.1e}, {key[2]}: {accuracy:.4f}, {ms:.4f}")


def dominates(a: Point, b: Point) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and a != b


def describe_strategies(root: Path, names: list[str], trials: int) -> None:
    """Each strategy, and the random trials TPE starts with at this trial budget."""
    space = load_space(root / "spaces" / "default.yaml", "cpu")
    space.budget.trials = trials
    for name in names:
        print(f"{name}: {STRATEGIES[name].about}")
    print(
        f"each search asks for {trials} completed trials; tpe starts with "
        f"{startup_trials(space)} random trials (siblings included)"
    )


def print_tables(table: pd.DataFrame, searches: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(searches.to_string(index=False))
        print()
        print(table.to_string(index=False))
        print()
        print(summary(table).to_string())


def main() -> int:
    start = time.perf_counter()
    args = parse_args()
    root = args.cache.resolve()
    prepare(root, args.fresh, args.fresh_grid)
    run_ground_truth(root)
    truth = ground_truth(root)
    reference = reference_point(list(truth.points.values()))
    grid_hv = hypervolume(list(truth.points.values()), reference)
    describe_truth(truth, reference)

    adapters_before = len(manifests(root / "stages", "adapter"))
    jobs = [Job(name, seed, args.trials) for name in args.samplers for seed in range(args.seeds)]
    records = run_searches(root, jobs, args.jobs)
    trained = len(manifests(root / "stages", "adapter")) - adapters_before
    scored = [score(root, job, records[job], truth) for job in jobs]

    table = budget_table(scored, truth, reference, grid_hv)
    table.to_csv(root / "results.csv", index=False)
    print()
    print_tables(table, search_table(scored, truth))
    print()
    describe_strategies(root, args.samplers, args.trials)
    mismatches = sum(
        r.point != truth.points[r.key] for s in scored for r in s.rows if r.point is not None
    )
    print(
        f"budgets: shares of the grid's cost; a row's trials are those done before the charged "
        f"cost passed its budget ('ended': the study stopped before spending it). New trainings "
        f"during the searches: {trained}; completed trials whose figures differ from the grid's: "
        f"{mismatches}"
    )
    print()
    check_a(table)
    check_b(table, trial_count_table(scored, reference, grid_hv))
    print(f"\nresults: {root / 'results.csv'}; elapsed {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
