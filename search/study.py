"""The Optuna study and the trial recipe: train -> merge -> export -> measure.

`run_study` opens (or continues) a multi-objective study in the run folder's SQLite database and
runs trials until the budget of completed trials is reached. `run_trial` is the recipe for one
candidate; each stage's output is cached under the hash of its inputs, so a trial that differs
from an earlier one only in its export settings reuses the trained and merged model.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from autotune.candidates.base import BaseModel, resolve_base
from autotune.candidates.cache import StageCache, digest
from autotune.candidates.data import Dataset, load_dataset
from autotune.candidates.export import ExportParams, export_onnx
from autotune.candidates.merge import merge_adapter
from autotune.candidates.train import TrainParams, TrainResult, load_train_result, train_adapter
from autotune.evaluators.accuracy import AccuracyResult, measure_accuracy
from autotune.evaluators.footprint import folder_size_mb
from autotune.evaluators.latency import LatencySettings, measure_latency
from autotune.search.params import export_params, suggest, train_params
from autotune.search.progress import Progress
from autotune.search.space import LATENCY_METRICS, Space, split_metric

STAGES = ("train", "merge", "export", "accuracy", "latency")


@dataclass
class Run:
    """What every trial of one study shares: the space, the target, the folders, data and base."""

    space: Space
    target: str
    out: Path
    cache: StageCache
    dataset: Dataset
    base: BaseModel
    progress: Progress

    def trial_dir(self, number: int) -> Path:
        path = self.out / "trials" / str(number)
        path.mkdir(parents=True, exist_ok=True)
        return path


def prepare_run(space: Space, target: str, out: Path, cache_dir: Path, progress: Progress) -> Run:
    """Load the data and resolve (or build) the base model once for the whole study."""
    out.mkdir(parents=True, exist_ok=True)
    cache = StageCache(cache_dir)
    with progress.step("data"):
        dataset = load_dataset(space)
    with progress.step("base model"):
        base = resolve_base(space, dataset, cache)
    sizes = f"{len(dataset.train)} train / {len(dataset.eval)} eval examples"
    progress.note(f"data: {sizes}; base: {base.description}")
    return Run(space, target, out, cache, dataset, base, progress)


# --------------------------------------------------------------------------- one trial


@dataclass
class TrialRecord:
    """What a trial leaves in trials/<n>/metrics.json and in the study's user attributes."""

    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    onnx_dir: str = ""


@contextmanager
def timed(record: TrialRecord, stage: str, progress: Progress) -> Iterator[None]:
    start = time.perf_counter()
    with progress.step(stage):
        yield
    record.seconds[stage] = round(time.perf_counter() - start, 3)


def run_trial(trial: optuna.Trial, run: Run) -> tuple[float, ...]:
    """The recipe for one candidate; returns the objective values in the space's order."""
    space = run.space
    values = suggest(trial, space)
    trial.set_user_attr("params", values)
    training, exporting = train_params(values, space), export_params(values, run.target)
    record = TrialRecord(params=values)
    run.progress.trial_started(trial.number, values)

    with timed(record, "train", run.progress):
        adapter_key, adapter = make_adapter(run, training)
    with timed(record, "merge", run.progress):
        merged_key, merged = make_merged(run, adapter_key, adapter)
    with timed(record, "export", run.progress):
        onnx_dir = make_onnx(run, merged_key, merged, exporting)
    with timed(record, "accuracy", run.progress):
        accuracy = measure_accuracy(
            onnx_dir,
            run.target,
            run.dataset.eval,
            run.dataset.labels,
            threads=space.latency.threads,
        )
    with timed(record, "latency", run.progress):
        settings = LatencySettings(**space.latency.model_dump(exclude={"stat"}))
        latency = measure_latency(
            onnx_dir, run.target, [e.prompt for e in run.dataset.eval], settings
        )

    record.onnx_dir = str(onnx_dir)
    record.metrics = collect_metrics(accuracy, latency, onnx_dir, load_train_result(adapter))
    save_record(trial, run, record)
    for constraint in space.parsed_constraints():
        value = metric(record.metrics, constraint.metric, space)
        trial.set_constraint(str(constraint), constraint.violation(value))
    result = {name: metric(record.metrics, name, space) for name in space.objectives}
    run.progress.trial_done(trial.number, record.seconds, result)
    return tuple(result.values())


# Each stage's output is cached under the hash of everything that determines it.


def make_adapter(run: Run, training: TrainParams) -> tuple[str, Path]:
    key = digest({"base": run.base.key, "data": data_identity(run), "train": asdict(training)})
    path = run.cache.get_or_build(
        "adapter",
        key,
        lambda out: train_adapter(
            run.base.path,
            run.dataset.train,
            run.dataset.eval,
            training,
            out,
            trust_remote_code=run.space.model.trust_remote_code,
        ),
    )
    return key, path


def make_merged(run: Run, adapter_key: str, adapter: Path) -> tuple[str, Path]:
    key = digest({"adapter": adapter_key})
    trust = run.space.model.trust_remote_code
    path = run.cache.get_or_build(
        "merged",
        key,
        lambda out: merge_adapter(run.base.path, adapter, out, trust_remote_code=trust),
    )
    return key, path


def make_onnx(run: Run, merged_key: str, merged: Path, exporting: ExportParams) -> Path:
    key = digest({"merged": merged_key, "export": asdict(exporting)})
    return run.cache.get_or_build("onnx", key, lambda out: export_onnx(merged, exporting, out))


def collect_metrics(
    accuracy: AccuracyResult,
    latency: dict[str, dict[str, float]],
    onnx_dir: Path,
    trained: TrainResult,
) -> dict[str, float]:
    """Flat metrics: accuracy, macro_f1, size_mb, losses, and `<latency metric>.<statistic>`."""
    metrics = {
        "accuracy": accuracy.accuracy,
        "size_mb": folder_size_mb(onnx_dir),
        "train_loss": trained.train_loss,
        "eval_loss": trained.eval_loss,
    }
    if accuracy.macro_f1 is not None:
        metrics["macro_f1"] = accuracy.macro_f1
    for name, stats in latency.items():
        metrics.update({f"{name}.{stat}": value for stat, value in stats.items()})
    return metrics


def metric(metrics: dict[str, float], name: str, space: Space) -> float:
    """A metric by the name the space uses; latency metrics default to `latency.stat`."""
    base, stat = split_metric(name)
    if base in LATENCY_METRICS:
        return metrics[f"{base}.{stat or space.latency.stat}"]
    return metrics[base]


def data_identity(run: Run) -> str:
    """What determines the training data: the examples of the split and the templates."""
    split = [(e.prompt, e.completion) for e in run.dataset.train]
    return digest({"train": split, "eval_size": len(run.dataset.eval)})


def save_record(trial: optuna.Trial, run: Run, record: TrialRecord) -> None:
    for key, value in asdict(record).items():
        trial.set_user_attr(key, value)
    (run.trial_dir(trial.number) / "metrics.json").write_text(json.dumps(asdict(record), indent=2))


# --------------------------------------------------------------------------- the study


def objective(run: Run):
    """The Optuna objective: the recipe, with failures recorded and logged, not fatal."""

    def run_one(trial: optuna.Trial) -> tuple[float, ...]:
        try:
            return run_trial(trial, run)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            trial.set_user_attr("error", reason)
            (run.trial_dir(trial.number) / "error.log").write_text(traceback.format_exc())
            run.progress.trial_failed(trial.number, reason)
            raise

    return run_one


def space_hash(space: Space) -> str:
    """What the trials of a study depend on: every section but the budget and the selection."""
    return digest(space.model_dump(mode="json", exclude={"budget", "select"}))


class StudyMismatch(Exception):
    """The run folder's study was made from a different space."""


def open_study(space: Space, target: str, storage: str, seed: int) -> optuna.Study:
    """Create the study, or load it when it exists and was made from the same space and target."""
    budget = space.budget.trials
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, budget // 3)))
    study = optuna.create_study(
        storage=storage,
        study_name=space.name,
        directions=list(space.objectives.values()),
        sampler=sampler,
        load_if_exists=True,
    )
    identity = {"space_hash": space_hash(space), "target": target}
    stored = {k: study.user_attrs.get(k) for k in identity}
    if stored == {"space_hash": None, "target": None}:
        for key, value in identity.items():
            study.set_user_attr(key, value)
        study.set_user_attr("space", space.model_dump(mode="json"))
    elif stored != identity:
        raise StudyMismatch(
            f"the study {space.name!r} in {storage} was made from a different space file or target "
            f"({stored['target']}); use another --out, or the same space and target to continue it"
        )
    return study


def count(study: optuna.Study, *states: optuna.trial.TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def run_study(run: Run, study: optuna.Study, trials: int, timeout: float | None) -> optuna.Study:
    """Run trials until `trials` completed trials exist in the study (or the timeout)."""
    complete, fail = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
    failures_before = count(study, fail)

    def stop_when_done(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
        if count(study, complete) >= trials or count(study, fail) - failures_before >= trials:
            study.stop()

    if count(study, complete) < trials:
        study.optimize(
            objective(run),
            timeout=timeout,
            catch=(Exception,),
            callbacks=[stop_when_done],
            gc_after_trial=True,
        )
    return study
