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
import bisect
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
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from autotune.candidates.cache import MANIFEST, digest
from autotune.search.samplers import startup_trials
from autotune.spaces import DEFAULT_SPACE, SPACES_DIR, load_space

DEFAULT_CACHE = Path(__file__).resolve().parent / ".cache" / "search"
AUTOTUNE = str(Path(sys.executable).with_name("autotune"))
STUDY = "search-efficiency"
SEARCH = {
    "lora_r": {"choices": [8, 32, 64]},
    "learning_rate": {"choices": [6.0e-4, 1.9e-3, 6.0e-3]},
    "precision": {"choices": ["fp32", "int8", "int4"]},
    "int4_block_size": 32,
    "int4_accuracy_level": 4,
}
GRID_POINTS = 27
GRID_STAGES = ("adapter", "merged", "onnx", "measure")  # the tiny base is shared and not charged
BUDGETS = (Fraction(1, 6), Fraction(1, 3), Fraction(1, 2))  # shares of the grid's cost
TRIAL_COUNTS = (5, 9, 14)  # completed trials, 1/6, 1/3 and 1/2 of the grid: for information
PLAIN = {"expand": [], "prune": False}  # every trial runs as sampled: no siblings, no pruning
HV_GOAL, GOAL_BUDGET = 0.95, Fraction(1, 3)  # check (a): 95% of the grid's HV within 1/3 its cost
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


@dataclass(frozen=True)
class Job:
    strategy: str
    seed: int
    trials: int  # completed trials asked for

    @property
    def name(self) -> str:
        return f"{self.strategy}-n{self.trials}-s{self.seed}"


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


# --------------------------------------------------------------------------- reading studies

Point = tuple[float, float]  # (accuracy, e2e_ms)
GridKey = tuple[int, float, str]  # (lora_r, learning_rate, precision)


def grid_key(params: dict[str, Any]) -> GridKey:
    return int(params["lora_r"]), float(params["learning_rate"]), str(params["precision"])


@dataclass(frozen=True)
class TrialRow:
    """What a bench needs of one trial."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL
    key: GridKey
    adapter: str
    onnx: str
    point: Point | None
    pruned_share: float  # the share of its training a pruned trial ran before it stopped
    repruned: bool  # pruned at once, without training: its configuration was pruned before


def pruned_share(reason: str) -> float:
    """The share of a training done when it was pruned: 'at checkpoint 2 of 3' -> 2/4, since
    the checkpoints split the training into equal parts."""
    match = re.search(r"at checkpoint (\d+) of (\d+)", reason)
    if not match:
        raise ValueError(f"no checkpoint in prune reason {reason!r}")
    return int(match.group(1)) / (int(match.group(2)) + 1)


def read_trials(run_folder: Path) -> list[TrialRow]:
    """The finished trials of a run folder's study, in order."""
    storage = f"sqlite:///{run_folder / 'study.db'}"
    study = optuna.load_study(study_name=STUDY, storage=storage)
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        attrs, state = trial.user_attrs, trial.state.name
        if state not in ("COMPLETE", "PRUNED", "FAIL"):
            continue
        reason = attrs.get("pruned", "") if state == "PRUNED" else ""
        repruned = reason.startswith("pruned before")
        rows.append(
            TrialRow(
                number=trial.number,
                state=state,
                key=grid_key(attrs.get("params") or trial.params),
                adapter=attrs.get("adapter_key", ""),
                onnx=Path(attrs.get("onnx_dir", "")).name,
                point=(trial.values[0], trial.values[1]) if state == "COMPLETE" else None,
                pruned_share=pruned_share(reason) if reason and not repruned else 0.0,
                repruned=repruned,
            )
        )
    return rows


def manifests(stages: Path, stage: str) -> dict[str, dict[str, Any]]:
    """The manifest of every entry of one stage of the cache, by key."""
    return {
        path.parent.name: json.loads(path.read_text())
        for path in (stages / stage).glob(f"*/{MANIFEST}")
    }


def onnx_of_measurements(stages: Path) -> dict[str, str]:
    """The key of the ONNX model each measurement measured, by measurement key."""
    onnx = {}
    for key in manifests(stages, "measure"):
        measured = json.loads((stages / "measure" / key / "measurement.json").read_text())
        onnx[key] = Path(measured["model_dir"]).name
    return onnx


@dataclass
class GroundTruth:
    """The grid's points and the build cost of each stage it used (`unit`: the manifest field)."""

    points: dict[GridKey, Point]
    adapters: dict[GridKey, str]  # the adapter key of each point
    train: dict[str, float]  # by adapter key
    merge: dict[str, float]  # by adapter key
    export: dict[str, float]  # by onnx key
    measure: dict[str, float]  # by onnx key
    unit: str  # "cpu_seconds" or "seconds"

    @property
    def cost(self) -> float:
        stages = (self.train, self.merge, self.export, self.measure)
        return sum(sum(stage.values()) for stage in stages)


def cost_unit(entries: list[dict[str, Any]]) -> str:
    """CPU seconds when every manifest has them, else wall seconds."""
    return "cpu_seconds" if all("cpu_seconds" in m for m in entries) else "seconds"


def ground_truth(root: Path) -> GroundTruth:
    rows = [r for r in read_trials(root / "grid") if r.state == "COMPLETE"]
    points = {r.key: r.point for r in rows if r.point is not None}
    if len(points) != GRID_POINTS:
        raise RuntimeError(f"the grid study holds {len(points)} of {GRID_POINTS} points")
    stages = root / "stages"
    by_stage = {stage: manifests(stages, stage) for stage in GRID_STAGES}
    measure_of = {onnx: key for key, onnx in onnx_of_measurements(stages).items()}
    adapters, onnx = {r.adapter for r in rows}, {r.onnx for r in rows}
    used = {
        "train": {a: by_stage["adapter"][a] for a in adapters},
        "merge": {a: by_stage["merged"][digest({"adapter": a})] for a in adapters},
        "export": {o: by_stage["onnx"][o] for o in onnx},
        "measure": {o: by_stage["measure"][measure_of[o]] for o in onnx},
    }
    unit = cost_unit([m for stage in used.values() for m in stage.values()])
    costs = {name: {k: m[unit] for k, m in stage.items()} for name, stage in used.items()}
    return GroundTruth(points, {r.key: r.adapter for r in rows}, **costs, unit=unit)


# --------------------------------------------------------------------------- scoring


def hypervolume(points: list[Point], reference: Point) -> float:
    """2-D hypervolume of (accuracy up, e2e_ms down) points, bounded by `reference`.

    Sweep by accuracy, best first: each point that is faster than every more accurate one adds
    the slab between its latency and the best latency so far, as wide as its accuracy margin.
    """
    ref_acc, ref_ms = reference
    inside = sorted(
        (p for p in points if p[0] > ref_acc and p[1] < ref_ms), key=lambda p: (-p[0], p[1])
    )
    volume, best_ms = 0.0, ref_ms
    for accuracy, ms in inside:
        if ms < best_ms:
            volume += (accuracy - ref_acc) * (best_ms - ms)
            best_ms = ms
    return volume


def reference_point(points: list[Point]) -> Point:
    """The nadir (worst accuracy, worst latency) pushed out by 1% of each range."""
    accuracies, latencies = [p[0] for p in points], [p[1] for p in points]
    acc_pad = 0.01 * (max(accuracies) - min(accuracies))
    ms_pad = 0.01 * (max(latencies) - min(latencies))
    return min(accuracies) - acc_pad, max(latencies) + ms_pad


@dataclass
class Charge:
    """What a run would have cost from an empty cache, trial by trial."""

    truth: GroundTruth
    trained: set[str] = field(default_factory=set)
    exported: set[str] = field(default_factory=set)

    def cost(self, row: TrialRow) -> float:
        """The cost of one trial, after those charged before it.

        A pruned training leaves nothing in the cache: it costs its share up to the checkpoint
        that stopped it. A configuration pruned before is pruned again without training (free).
        A completed trial pays its training and merge, then its export and measurement, unless
        an earlier trial of the run built them.
        """
        if row.state == "FAIL":
            return 0.0
        if row.state == "PRUNED":
            return row.pruned_share * self.truth.train[row.adapter]
        seconds = 0.0
        if row.adapter not in self.trained:
            self.trained.add(row.adapter)
            seconds += self.truth.train[row.adapter] + self.truth.merge[row.adapter]
        if row.onnx not in self.exported:
            self.exported.add(row.onnx)
            seconds += self.truth.export[row.onnx] + self.truth.measure[row.onnx]
        return seconds


def running_costs(rows: list[TrialRow], truth: GroundTruth) -> list[float]:
    """The cost charged after each trial, in trial order."""
    charge = Charge(truth)
    return list(itertools.accumulate(charge.cost(row) for row in rows))


@dataclass
class Scored:
    """One search: its trials, the running cost after each, and how the study ended."""

    job: Job
    rows: list[TrialRow]
    costs: list[float]
    wall_s: float
    stopped: str

    @property
    def total_cost(self) -> float:
        return self.costs[-1] if self.costs else 0.0

    def within(self, cost: float) -> list[TrialRow]:
        """The trials done before the running cost passed `cost`."""
        return self.rows[: bisect.bisect_right(self.costs, cost)]

    def first_completed(self, count: int) -> list[TrialRow]:
        """The trials up to the `count`-th completed one (all when fewer completed)."""
        completed = [i for i, row in enumerate(self.rows) if row.state == "COMPLETE"]
        return self.rows if len(completed) < count else self.rows[: completed[count - 1] + 1]


def score(root: Path, job: Job, record: dict[str, Any], truth: GroundTruth) -> Scored:
    rows = read_trials(root / "runs" / job.name)
    costs = running_costs(rows, truth)
    return Scored(job, rows, costs, record["seconds"], record["stopped"])


def hv_fraction(rows: list[TrialRow], reference: Point, grid_hv: float) -> float:
    return hypervolume([r.point for r in rows if r.point is not None], reference) / grid_hv


def completed_trainings(rows: list[TrialRow]) -> int:
    return len({r.adapter for r in rows if r.state == "COMPLETE"})


# --------------------------------------------------------------------------- report


def budget_table(
    scored: list[Scored], truth: GroundTruth, reference: Point, grid_hv: float
) -> pd.DataFrame:
    """One row per search and cost budget: what it held when the budget was spent."""
    records = []
    for search, budget in itertools.product(scored, BUDGETS):
        limit = float(budget) * truth.cost
        rows = search.within(limit)
        spent = search.costs[len(rows) - 1] if rows else 0.0
        records.append(
            {
                "strategy": search.job.strategy,
                "budget": str(budget),
                "seed": search.job.seed,
                "hv_frac": round(hv_fraction(rows, reference, grid_hv), 4),
                "cost_s": round(spent, 1),
                "cost_frac": round(spent / truth.cost, 3),
                "trials": len(rows),
                "completed": sum(r.state == "COMPLETE" for r in rows),
                "trainings": completed_trainings(rows),
                "pruned": sum(r.state == "PRUNED" for r in rows),
                "repruned": sum(r.repruned for r in rows),
                "ended": "yes" if search.total_cost < limit else "",
            }
        )
    return pd.DataFrame(records)


def search_table(scored: list[Scored], truth: GroundTruth) -> pd.DataFrame:
    """One row per search: the whole study."""
    return pd.DataFrame(
        [
            {
                "strategy": s.job.strategy,
                "seed": s.job.seed,
                "trials": len(s.rows),
                "completed": sum(r.state == "COMPLETE" for r in s.rows),
                "distinct": len({r.key for r in s.rows if r.state == "COMPLETE"}),
                "trainings": completed_trainings(s.rows),
                "pruned": sum(r.state == "PRUNED" for r in s.rows),
                "repruned": sum(r.repruned for r in s.rows),
                "failed": sum(r.state == "FAIL" for r in s.rows),
                "cost_frac": round(s.total_cost / truth.cost, 3),
                "wall_s": round(s.wall_s, 1),
                "stopped": s.stopped,
            }
            for s in scored
        ]
    )


def summary(table: pd.DataFrame) -> pd.DataFrame:
    grouped = table.groupby(["strategy", "budget"], sort=False)
    return grouped.agg(
        hv_mean=("hv_frac", "mean"),
        hv_min=("hv_frac", "min"),
        cost_frac_mean=("cost_frac", "mean"),
        trials=("trials", "mean"),
        trainings=("trainings", "mean"),
        pruned=("pruned", "mean"),
        ended=("ended", lambda e: int((e == "yes").sum())),
    ).round(3)


def trial_count_table(scored: list[Scored], reference: Point, grid_hv: float) -> pd.DataFrame:
    """HV fraction of each search's first 5, 9 and 14 completed trials, whatever they cost."""
    return pd.DataFrame(
        [
            {
                "strategy": s.job.strategy,
                "budget": count,
                "seed": s.job.seed,
                "hv_frac": hv_fraction(s.first_completed(count), reference, grid_hv),
            }
            for s, count in itertools.product(scored, TRIAL_COUNTS)
        ]
    )


def at_budget(table: pd.DataFrame, strategy: str, budget: str | int) -> pd.DataFrame:
    return table[(table.strategy == strategy) & (table.budget == budget)].set_index("seed")


def compare(mine: pd.DataFrame, theirs: pd.DataFrame, label: str) -> bool:
    """Seed by seed HV fractions of two sets of runs; True when the first is >= on most seeds."""
    seeds = mine.index.intersection(theirs.index)
    diff = mine.loc[seeds, "hv_frac"] - theirs.loc[seeds, "hv_frac"]
    better, ties, worse = int((diff > 0).sum()), int((diff == 0).sum()), int((diff < 0).sum())
    print(
        f"    {label}: better {better}, ties {ties}, worse {worse} (mean "
        f"{mine.loc[seeds, 'hv_frac'].mean():.3f} vs {theirs.loc[seeds, 'hv_frac'].mean():.3f})"
    )
    return len(seeds) > 0 and better + ties > len(seeds) / 2


def check_a(table: pd.DataFrame) -> bool:
    """The default's HV within GOAL_BUDGET of the grid's cost, seed by seed."""
    runs = at_budget(table, "default", str(GOAL_BUDGET))
    reached = int((runs.hv_frac >= HV_GOAL).sum())
    passed = reached > len(runs) / 2
    print(
        f"(a) default reaches >= {HV_GOAL:.0%} of the grid's HV within {GOAL_BUDGET} of the "
        f"grid's cost on {reached} of {len(runs)} seeds (HV fractions "
        f"{', '.join(f'{v:.3f}' for v in runs.hv_frac)}; mean {runs.hv_frac.mean():.3f}); "
        f"most seeds: {'PASS' if passed else 'FAIL'}"
    )
    return passed


def check_b(table: pd.DataFrame, counts: pd.DataFrame) -> bool | None:
    """Default vs random, seed by seed, at each cost budget; None when random did not run."""
    if "random" not in set(table.strategy):
        print("(b) skipped: random did not run")
        return None
    print("(b) default vs random at equal cost (share of the grid's), HV fraction seed by seed:")
    passed = True
    for budget in map(str, BUDGETS):
        mine, theirs = at_budget(table, "default", budget), at_budget(table, "random", budget)
        passed &= compare(mine, theirs, f"cost {budget}")
    print(f"    default >= random on most seeds at every budget: {'PASS' if passed else 'FAIL'}")
    print("    for information, at equal completed trials (whatever they cost):")
    for count in TRIAL_COUNTS:
        mine, theirs = at_budget(counts, "default", count), at_budget(counts, "random", count)
        compare(mine, theirs, f"{count} trials")
    return passed


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
