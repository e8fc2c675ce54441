"""How much of the Pareto front does a search find, and at what cost in training and export time?

Ground truth: an exhaustive grid of a bench space (default: the SmolLM2 space on a reduced split,
2 LoRA ranks x 4 learning rates x 3 precisions = 24 points; `--space tiny`: the tiny space's
27-point grid), run once into a stage cache with every training run rung by rung and nothing
stopped (`strategy.fidelity.stop: false`), so that each configuration's eval loss at every rung
boundary and at the median rule's checkpoints, and each stage's CPU seconds, are known. Then one
real autotune study per strategy and seed runs on the same space against that cache. Each trial is
charged what it would have cost from an empty cache (the ground-truth build cost of each stage,
or rung part, it used first), and for each cost budget (1/6, 1/3, 1/2 of the grid's) a study is
scored by the hypervolume of the trials it completed within that budget, as a fraction of the
grid's. Measurements come from the grid's cache, so racing evaluation never runs in the searches:
their measurements are charged in full.

Run: HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python -m bench.search_efficiency
     [--space smollm2|tiny] [--cache DIR] [--seeds N] [--samplers default,median,random,random-sib]
     [--trials N] [--jobs 2] [--fresh] [--fresh-grid]
The bench folder (default bench/.cache/search-<space>) holds the space files, the stage cache
(stages/), the grid's run folder (grid/), one run folder per search (runs/) and results.csv.
"""

from __future__ import annotations

import argparse
import copy
import itertools
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

from autotune.decisions.dominance import pareto_front
from autotune.reports.hypervolume import hypervolume
from autotune.search.samplers import startup_trials
from autotune.spaces import DEFAULT_SPACE, SPACES_DIR, load_space
from bench.lib.results import write_result
from bench.lib.search_costs import (
    DIRECTIONS,
    GRID_STAGES,
    STUDY,
    GridKey,
    GroundTruth,
    Job,
    Point,
    ground_truth,
    manifests,
    reference_point,
)
from bench.lib.search_tables import (
    budget_table,
    checks,
    score,
    search_table,
    summary,
    trial_count_table,
)
from bench.lib.search_ties import grid_evidence

BENCH = Path(__file__).resolve().parent / ".cache"
AUTOTUNE = str(Path(sys.executable).with_name("autotune"))


@dataclass(frozen=True)
class BenchSpace:
    """A space file the bench searches, the grid it searches over and how it is cut down."""

    file: Path
    search: dict[str, Any]
    changes: dict[str, Any]  # sections replaced in the space file (a reduced split, ...)

    @property
    def grid_points(self) -> int:
        return len(list(itertools.product(*(k["choices"] for k in self.search.values()
                                            if isinstance(k, dict)))))  # fmt: skip


SMOLLM2_GRID = {
    "lora_r": {"choices": [8, 32]},
    "learning_rate": {"choices": [1.0e-4, 3.0e-4, 1.0e-3, 3.0e-3]},
    "precision": {"choices": ["fp32", "int8", "int4"]},
    "int4_algo": "k_quant_last",
}
SPACES = {
    # 256 training examples (32 steps of 8) and 128 eval examples: a grid of 8 trainings in
    # about a quarter of an hour on 2 cores
    "smollm2": BenchSpace(
        SPACES_DIR / "smollm2.yaml", SMOLLM2_GRID, {"data": {"max_train": 256, "max_eval": 128}}
    ),
    # The SmolLM2 space as it is: its own learning-rate range and its whole training (1,024
    # examples, 128 steps of 8; rungs end at steps 15, 43 and 128), 128 eval examples; about 40
    # minutes on 2 cores.
    "smollm2-space": BenchSpace(
        SPACES_DIR / "smollm2.yaml",
        {**SMOLLM2_GRID, "learning_rate": {"choices": [2.0e-4, 4.0e-4, 8.0e-4, 1.5e-3]}},
        {"data": {"max_eval": 128}},
    ),
    "tiny": BenchSpace(
        DEFAULT_SPACE,
        {
            "lora_r": {"choices": [8, 32, 64]},
            "learning_rate": {"choices": [6.0e-4, 1.9e-3, 6.0e-3]},
            "precision": {"choices": ["fp32", "int8", "int4"]},
            "int4_block_size": 32,
            "int4_accuracy_level": 4,
        },
        {},
    ),
}
# The grid: every point as sampled, every training through all its rungs, nothing stopped, and
# every measurement in full.
GRID = {
    "expand": [],
    "prune": False,
    "fidelity": {"rungs": 3, "eta": 3, "stop": False},
    "racing": None,
}
STOPPED = re.compile(r"stopped after \d+ (?:failed|pruned) trials in a row")


@dataclass(frozen=True)
class Strategy:
    sampler: str
    strategy: dict[str, Any]  # the space's strategy section ({}: the default one)
    about: str


STRATEGIES = {
    "default": Strategy("tpe", {}, "tpe, siblings, successive halving, racing (the default)"),
    "median": Strategy("tpe", {"fidelity": None}, "tpe, siblings, median rule (the old default)"),
    "hyperband": Strategy(
        "tpe", {"fidelity": {"brackets": 3}}, "the default with Hyperband's 3 brackets"
    ),
    "random": Strategy(
        "random", {"expand": [], "prune": False, "fidelity": None}, "random, no siblings, no stops"
    ),
    "random-sib": Strategy(
        "random", {"prune": False, "fidelity": None}, "random, siblings, no early stops"
    ),
}


# --------------------------------------------------------------------------- running autotune


def space_dict(bench: BenchSpace, strategy: dict[str, Any]) -> dict[str, Any]:
    """The bench space over its grid, without constraints, with `strategy`."""
    space = yaml.safe_load(bench.file.read_text())
    space["name"] = STUDY
    space["data"]["files"] = str((bench.file.parent / space["data"]["files"]).resolve())
    for section, values in bench.changes.items():
        space[section] = {**space.get(section, {}), **values}
    space["search"] = copy.deepcopy(bench.search)
    space.pop("constraints", None)
    space["budget"] = {"trials": bench.grid_points}
    # The scores read the trials' own figures: the end-of-study confirmation round (a minute or
    # more of timing on SmolLM2) would change nothing they count.
    space["strategy"] = {"confirm": False, **strategy}
    return space


def write_space(folder: Path, bench: BenchSpace, name: str, strategy: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space_dict(bench, strategy), sort_keys=False))
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
    parser.add_argument("--space", choices=list(SPACES), default="smollm2", help="bench space")
    parser.add_argument("--cache", type=Path, help="bench folder (bench/.cache/search-SPACE)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per strategy")
    parser.add_argument(
        "--samplers",
        default=",".join(STRATEGIES),
        help=f"strategies to run, comma-separated, among {', '.join(STRATEGIES)}",
    )
    parser.add_argument(
        "--trials",
        type=int,
        help="completed trials each search asks for (default: the grid's points, enough to pass "
        "1/2 of the grid's cost)",
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
    args.bench = SPACES[args.space]
    args.cache = args.cache or BENCH / f"search-{args.space}"
    args.trials = args.trials or args.bench.grid_points
    args.samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]
    unknown = set(args.samplers) - set(STRATEGIES)
    if unknown or "default" not in args.samplers:
        parser.error(f"--samplers: expected 'default' and others among {list(STRATEGIES)}")
    return args


def prepare(root: Path, bench: BenchSpace, fresh: bool, fresh_grid: bool) -> None:
    """The bench folder (ignored by git) and its space files; with `fresh`, no searches, and
    with `fresh_grid`, no grid run and none of its stage entries either."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / ".gitignore").exists():
        (root / ".gitignore").write_text("*\n")
    write_space(root / "spaces", bench, "grid", GRID)
    for name, strategy in STRATEGIES.items():
        write_space(root / "spaces", bench, name, strategy.strategy)
    if fresh or fresh_grid:
        shutil.rmtree(root / "runs", ignore_errors=True)
    if fresh_grid:
        shutil.rmtree(root / "grid", ignore_errors=True)
        for stage in GRID_STAGES:
            shutil.rmtree(root / "stages" / stage, ignore_errors=True)


def run_ground_truth(root: Path, points: int) -> None:
    """The whole grid, resumed from its study.db (nothing is rebuilt when it is complete)."""
    print(f"ground truth: the {points}-point grid in {root / 'grid'} ...", flush=True)
    start = time.perf_counter()
    autotune(root / "spaces" / "grid.yaml", root / "grid", root / "stages", points, 0, "grid")
    print(f"ground truth: {points} grid points ready in {time.perf_counter() - start:.0f} s")


def run_searches(root: Path, jobs: list[Job], parallel: int) -> dict[Job, dict[str, Any]]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        records = dict(zip(jobs, pool.map(lambda job: run_search(root, job), jobs), strict=True))
    print(f"searches: {len(jobs)} studies ready in {time.perf_counter() - start:.0f} s")
    return records


def describe_truth(truth: GroundTruth, reference: Point, search: dict[str, Any]) -> list[GridKey]:
    """Print the grid's costs, its points by training configuration, and its Pareto front; the
    front's keys."""
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
    precisions = search["precision"]["choices"]
    print(f"grid points (accuracy / latency) by training: {', '.join(precisions)}")
    for r, lr in sorted({k[:2] for k in truth.points}):
        figures = "  ".join("{:.3f} / {:.3f}".format(*truth.points[(r, lr, p)]) for p in precisions)
        train = truth.train[truth.adapters[(r, lr, precisions[0])]]
        print(f"    r {r:>2}, lr {lr:.1e}, train {train:4.0f} {unit}:  {figures}")
    keys = list(truth.points)
    front = [keys[i] for i in pareto_front([truth.points[k] for k in keys], DIRECTIONS)]
    print(f"reference point: accuracy {reference[0]:.4f}, latency {reference[1]:.4f}")
    print("grid Pareto front (lora_r, learning_rate, precision: accuracy, latency):")
    for key in sorted(front, key=lambda k: -truth.points[k][0]):
        accuracy, ms = truth.points[key]
        print(f"    {key[0]:>2}, {key[1]:.1e}, {key[2]}: {accuracy:.4f}, {ms:.4f}")
    return front


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
    prepare(root, args.bench, args.fresh, args.fresh_grid)
    run_ground_truth(root, args.bench.grid_points)
    truth = ground_truth(root, args.bench.grid_points)
    reference = reference_point(list(truth.points.values()))
    grid_hv = hypervolume(list(truth.points.values()), DIRECTIONS, reference)
    front = describe_truth(truth, reference, args.bench.search)

    adapters_before = len(manifests(root / "stages", "adapter"))
    jobs = [Job(name, seed, args.trials) for name in args.samplers for seed in range(args.seeds)]
    records = run_searches(root, jobs, args.jobs)
    trained = len(manifests(root / "stages", "adapter")) - adapters_before
    scored = [score(root, job, records[job], truth) for job in jobs]

    latency = list(yaml.safe_load(args.bench.file.read_text())["objectives"])[1]
    evidence = grid_evidence(root / "grid", latency)
    table = budget_table(scored, truth, reference, grid_hv, evidence)
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
    counts = trial_count_table(scored, reference, grid_hv)
    outcomes = {"default": checks(table, counts, "default")}
    if "hyperband" in args.samplers:  # for information: the default with Hyperband's brackets
        print("\nfor information, the same checks of hyperband:")
        outcomes["hyperband"] = checks(table, counts, "hyperband")
    print(f"\nresults: {root / 'results.csv'}; elapsed {time.perf_counter() - start:.0f} s")
    grid = {"points": len(truth.points), "cost": truth.cost, "unit": truth.unit, "front": front}
    grid |= {"hypervolume": grid_hv, "reference": reference}
    figures = {"grid": grid, "checks": outcomes, "new_trainings": trained}
    figures |= {"differing_figures": mismatches, "budgets": table.to_dict("records")}
    write_result("search_efficiency", figures, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
