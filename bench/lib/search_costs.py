"""Reading a search back for bench/search_efficiency.py: each trial's point, what it would have
cost from an empty cache (the grid's ground-truth build cost of each stage it used first), and
the reference point of the hypervolumes.

The grid trains every configuration rung by rung (search/fidelity.py, `stop: false`), so the
cost of each rung's part of a training is known: a search's trial paused at rung k is charged
the parts up to k that no earlier trial of that search built. Hypervolumes are
reports/hypervolume.py's, over DIRECTIONS.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from autotune.candidates.cache import MANIFEST
from autotune.candidates.train import resolve_dtype
from autotune.decisions.candidate import Direction
from autotune.evaluators.environment import versions
from autotune.search.fidelity import rung_key
from autotune.search.stages import merged_key
from bench.lib.tiny_models import tiny_space

STUDY = "search-efficiency"
# the base is shared by every search and not charged
GRID_STAGES = ("rung", "adapter", "merged", "onnx", "measure")

Point = tuple[float, float]  # (accuracy, the space's latency objective)
DIRECTIONS: tuple[Direction, Direction] = ("maximize", "minimize")  # a Point's
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
    rungs: int = 0  # the rungs of its training it reached (0: trained straight)
    dominated: int = 0  # racing evaluation: the eval examples scored before it stopped


def pruned_share(reason: str) -> float:
    """The share of a training done when it was pruned: 'at checkpoint 2 of 3' -> 2/4, since
    the checkpoints split the training into equal parts."""
    if reason.startswith("paused at rung") or reason.startswith("dominated after"):
        return 0.0  # charged by its rungs or its partial measurement instead
    if reason.startswith("a repeat of trial"):
        return 0.0  # not run: its configuration completed before
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
                rungs=(attrs.get("rung") or {}).get("reached", 0),
                dominated=(attrs.get("raced") or {}).get("examples", 0),
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
    train: dict[str, float]  # by adapter key: the whole training
    parts: dict[str, list[float]]  # by adapter key: the cost of each rung's part
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


def rung_parts(root: Path) -> dict[str, list[str]]:
    """The cache entry of each rung's part of every grid training (the last: the adapter)."""
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{root / 'grid' / 'study.db'}")
    parts: dict[str, list[str]] = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        adapter, ends = trial.user_attrs["adapter_key"], trial.user_attrs["rung"]["ends"]
        parts[adapter] = [rung_key(adapter, end) for end in ends[:-1]] + [adapter]
    return parts


def summed(manifests: list[dict[str, Any]]) -> dict[str, float]:
    """The build costs of a training's parts, added up (a unit only where every part has it)."""
    units = [u for u in ("cpu_seconds", "seconds") if all(u in m for m in manifests)]
    return {u: sum(m[u] for m in manifests) for u in units}


def ground_truth(root: Path, grid_points: int) -> GroundTruth:
    rows = [r for r in read_trials(root / "grid") if r.state == "COMPLETE"]
    points = {r.key: r.point for r in rows if r.point is not None}
    if len(points) != grid_points:
        raise RuntimeError(f"the grid study holds {len(points)} of {grid_points} points")
    stages = root / "stages"
    by_stage = {stage: manifests(stages, stage) for stage in GRID_STAGES}
    measure_of = {onnx: key for key, onnx in onnx_of_measurements(stages).items()}
    adapters, onnx = {r.adapter for r in rows}, {r.onnx for r in rows}
    installed, dtype = versions(), resolve_dtype(tiny_space().train.dtype)
    merged = {a: merged_key(a, dtype, installed) for a in adapters}
    chains = rung_parts(root)
    part_manifests = {
        a: [by_stage["rung"].get(k) or by_stage["adapter"][k] for k in chains[a]] for a in adapters
    }
    used = {
        "train": {a: summed(part_manifests[a]) for a in adapters},
        "merge": {a: by_stage["merged"][merged[a]] for a in adapters},
        "export": {o: by_stage["onnx"][o] for o in onnx},
        "measure": {o: by_stage["measure"][measure_of[o]] for o in onnx},
    }
    unit = cost_unit([m for stage in used.values() for m in stage.values()])
    costs = {name: {k: m[unit] for k, m in stage.items()} for name, stage in used.items()}
    parts = {a: [m[unit] for m in part_manifests[a]] for a in adapters}
    return GroundTruth(points, {r.key: r.adapter for r in rows}, parts=parts, **costs, unit=unit)


# --------------------------------------------------------------------------- scoring


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
    parts_built: dict[str, int] = field(default_factory=dict)  # rung parts charged, by adapter

    def rung_parts(self, adapter: str, reached: int) -> float:
        """The parts of a rung training up to rung `reached` not charged before."""
        done = self.parts_built.get(adapter, 0)
        self.parts_built[adapter] = max(done, reached)
        return sum(self.truth.parts[adapter][done:reached])

    def cost(self, row: TrialRow) -> float:
        """The cost of one trial, after those charged before it.

        A pruned training leaves nothing in the cache: it costs its share up to the checkpoint
        that stopped it. A configuration pruned before is pruned again without training (free).
        A completed trial pays its training and merge, then its export and measurement, unless
        an earlier trial of the run built them.
        """
        if row.state == "FAIL":
            return 0.0
        if row.state == "PRUNED" and row.rungs:  # paused at a rung
            return self.rung_parts(row.adapter, row.rungs)
        if row.state == "PRUNED":  # by the median rule, or not run (a repeat: no adapter)
            return row.pruned_share * self.truth.train[row.adapter] if row.pruned_share else 0.0
        seconds = 0.0
        if row.adapter not in self.trained:
            self.trained.add(row.adapter)
            if row.rungs:
                seconds += self.rung_parts(row.adapter, len(self.truth.parts[row.adapter]))
            else:
                seconds += self.truth.train[row.adapter]
            seconds += self.truth.merge[row.adapter]
        if row.onnx not in self.exported:
            self.exported.add(row.onnx)
            seconds += self.truth.export[row.onnx] + self.truth.measure[row.onnx]
        return seconds


def running_costs(rows: list[TrialRow], truth: GroundTruth) -> list[float]:
    """The cost charged after each trial, in trial order."""
    charge = Charge(truth)
    return list(itertools.accumulate(charge.cost(row) for row in rows))


@dataclass(frozen=True)
class Job:
    strategy: str
    seed: int
    trials: int  # completed trials asked for

    @property
    def name(self) -> str:
        return f"{self.strategy}-n{self.trials}-s{self.seed}"
