"""The Optuna study and the trial recipe: train -> merge -> export -> measure.

`open_study` creates (or joins) a multi-objective study in a storage: the run folder's SQLite
database by default, or one that several workers share (search/storage.py). `run_study` runs
trials until the study holds the budget of completed trials, counted over every worker.
`run_trial` is the recipe for one candidate; each stage's output is cached under the hash of its
inputs, so a trial that differs from an earlier one only in its export settings reuses the
trained and merged model.
"""

from __future__ import annotations

import functools
import json
import time
import traceback
from collections.abc import Callable, Iterator
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
from autotune.evaluators.accuracy import metric_location
from autotune.evaluators.environment import describe
from autotune.evaluators.measurement import benchmark, latency_settings
from autotune.search.budget import SURPLUS, wait_for_room
from autotune.search.params import export_params, suggest, train_params
from autotune.search.progress import Progress
from autotune.search.pruning import (
    ADAPTER_KEY,
    CHECKPOINT_LOSSES,
    PRUNED,
    MedianRule,
    earlier_verdict,
)
from autotune.search.samplers import make_sampler, sampler_seed
from autotune.search.siblings import enqueue_siblings
from autotune.search.space import Space, StrategySection, metric
from autotune.search.workers import WORKER, this_worker

MEASUREMENT = "measurement.json"
TRAINED_HERE = "trained_here"  # trial user attribute: this trial ran the training


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
    environment: dict[str, Any]

    @functools.cached_property
    def train_identity(self) -> str:
        """What determines the training data: the examples of the split and the templates."""
        split = [(e.prompt, e.completion) for e in self.dataset.train]
        return digest({"train": split, "eval_size": len(self.dataset.eval)})

    @functools.cached_property
    def eval_identity(self) -> str:
        """What the measurements are taken on: the eval examples and the labels."""
        split = [(e.prompt, e.completion) for e in self.dataset.eval]
        return digest({"eval": split, "labels": self.dataset.labels})

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
    return Run(space, target, out, cache, dataset, base, progress, describe(target))


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
        adapter_key, adapter = make_adapter(run, training, trial)
    if "sibling_of" not in trial.user_attrs:  # queued once per training configuration
        enqueue_siblings(trial.study, space, trial)
    with timed(record, "merge", run.progress):
        merged_key, merged = make_merged(run, adapter_key, adapter, training.dtype)
    with timed(record, "export", run.progress):
        onnx_key, onnx_dir = make_onnx(run, merged_key, merged, exporting)
    with timed(record, "measure", run.progress):
        measurement = make_measurement(run, onnx_key, onnx_dir)

    record.onnx_dir = str(onnx_dir)
    trained = load_train_result(adapter)
    record.metrics = {
        **measurement["metrics"],
        "train_loss": trained.train_loss,
        "eval_loss": trained.eval_loss,
        **train_cost(trained),
    }
    trial.set_user_attr(CHECKPOINT_LOSSES, list(trained.checkpoint_losses))
    save_record(trial, run, record, measurement)
    for constraint in space.parsed_constraints():
        value = metric(record.metrics, constraint.metric, space)
        trial.set_constraint(str(constraint), constraint.violation(value))
    result = {name: metric(record.metrics, name, space) for name in space.objectives}
    run.progress.trial_done(trial.number, record.seconds, result)
    return tuple(result.values())


# Each stage's output is cached under the hash of everything that determines it.


def make_adapter(run: Run, training: TrainParams, trial: optuna.Trial) -> tuple[str, Path]:
    """The adapter's key and folder. A new training may be pruned at its checkpoints (see
    search/pruning.py); a configuration pruned before is pruned again without training."""
    key = digest({"base": run.base.key, "data": run.train_identity, "train": asdict(training)})
    trial.set_user_attr(ADAPTER_KEY, key)
    strategy = run.space.strategy
    verdict = earlier_verdict(trial.study, key) if strategy.prune else None
    if verdict not in (None, "complete"):
        raise optuna.TrialPruned(f"pruned before, {verdict}")
    rule = None  # judges only configurations no earlier trial settled
    if strategy.prune and verdict is None:
        rule = MedianRule(
            trial, key, strategy.checkpoints, strategy.prune_after, strategy.prune_from
        )

    def train(out: Path) -> None:
        trial.set_user_attr(TRAINED_HERE, True)  # not a cached adapter, nor another worker's
        train_adapter(
            run.base.path,
            run.dataset.train,
            run.dataset.eval,
            training,
            out,
            trust_remote_code=run.space.model.trust_remote_code,
            checkpoints=strategy.checkpoints,
            on_checkpoint=rule,
        )

    path = run.cache.get_or_build("adapter", key, train)
    cached = not trial.user_attrs.get(TRAINED_HERE)
    if cached and rule is not None:  # judged like a new training: the cache decides nothing
        for index, loss in enumerate(load_train_result(path).checkpoint_losses):
            rule(index, loss)
    return key, path


def train_cost(trained: TrainResult) -> dict[str, float]:
    """What training the trial's adapter took (a cached adapter keeps its figures)."""
    cost = {"train_s": trained.seconds}
    if trained.peak_mem_mb is not None:
        cost["train_peak_mem_mb"] = trained.peak_mem_mb
    return cost


def make_merged(run: Run, adapter_key: str, adapter: Path, dtype: str) -> tuple[str, Path]:
    """The adapter merged into the unquantised base, saved in the training's compute dtype."""
    key = digest({"adapter": adapter_key, "dtype": dtype})
    trust = run.space.model.trust_remote_code
    path = run.cache.get_or_build(
        "merged",
        key,
        lambda out: merge_adapter(
            run.base.path, adapter, out, dtype=dtype, trust_remote_code=trust
        ),
    )
    return key, path


def make_onnx(run: Run, merged_key: str, merged: Path, exporting: ExportParams) -> tuple[str, Path]:
    key = digest({"merged": merged_key, "export": asdict(exporting)})
    path = run.cache.get_or_build("onnx", key, lambda out: export_onnx(merged, exporting, out))
    return key, path


def make_measurement(run: Run, onnx_key: str, onnx_dir: Path) -> dict[str, Any]:
    """The candidate's figures (measurement.json), measured once per model, settings and machine."""
    space = run.space
    metric_module = metric_location(space.data.metric, space.root)
    key = digest(
        {
            "onnx": onnx_key,
            "eval": run.eval_identity,
            "metric": str(metric_module),
            "latency": space.latency.model_dump(exclude={"stat"}),
            "target": run.target,
            "machine": run.environment,
        }
    )

    def measure(out: Path) -> None:
        result = benchmark(
            onnx_dir,
            run.target,
            latency_settings(space.latency),
            run.dataset.eval,
            run.dataset.labels,
            str(metric_module),
            environment=run.environment,
        )
        (out / MEASUREMENT).write_text(json.dumps(result.to_json(), indent=2))

    path = run.cache.get_or_build("measure", key, measure)
    return json.loads((path / MEASUREMENT).read_text())


def save_record(
    trial: optuna.Trial, run: Run, record: TrialRecord, measurement: dict[str, Any]
) -> None:
    for key, value in asdict(record).items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("measured", how_measured(run, measurement))
    folder = run.trial_dir(trial.number)
    (folder / "metrics.json").write_text(json.dumps(asdict(record), indent=2))
    (folder / MEASUREMENT).write_text(json.dumps(measurement, indent=2))


def how_measured(run: Run, measurement: dict[str, Any]) -> dict[str, Any]:
    """How and where a trial's figures were taken, for reports and model cards."""
    latency = measurement["latency"]
    return {
        "accuracy_method": "label scoring" if run.dataset.labels else "greedy generation",
        "metric": run.space.data.metric if not run.dataset.labels else "classification",
        "train_examples": len(run.dataset.train),
        "eval_examples": len(run.dataset.eval),
        "latency": {**latency["settings"], "repeats_done": latency["repeats"]},
        "environment": measurement.get("environment") or run.environment,
    }


# --------------------------------------------------------------------------- the study


def objective(run: Run, trials: int, tidy: Callable[[], None]):
    """The Optuna objective: the recipe, with failures and pruning recorded, never fatal.

    A trial that another worker's trials leave no room for in the budget is not run (see
    search/budget.py)."""

    def run_one(trial: optuna.Trial) -> tuple[float, ...]:
        trial.set_user_attr(WORKER, this_worker())
        if not wait_for_room(trial.study, trials, tidy, before=trial.number):
            yield_surplus(trial)
        try:
            return run_trial(trial, run)
        except optuna.TrialPruned as pruned:
            trial.set_user_attr(PRUNED, str(pruned))
            run.progress.trial_pruned(trial.number, str(pruned))
            raise
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            trial.set_user_attr("error", reason)
            (run.trial_dir(trial.number) / "error.log").write_text(traceback.format_exc())
            run.progress.trial_failed(trial.number, reason)
            raise

    return run_one


def yield_surplus(trial: optuna.Trial) -> None:
    """End a trial the budget has no room for as pruned, its queued parameters queued again."""
    fixed = trial.storage.get_trial_system_attrs(trial._trial_id).get("fixed_params")
    if fixed is not None:  # taken from the queue: a sibling or a retry waits for a later run
        attrs = {k: v for k, v in trial.user_attrs.items() if k in ("sibling_of", "retry_of")}
        trial.study.enqueue_trial(fixed, user_attrs=attrs)
    trial.set_user_attr(PRUNED, SURPLUS)
    trial.study.stop()
    raise optuna.TrialPruned(SURPLUS)


def space_hash(space: Space) -> str:
    """What the trials of a study depend on: every section but budget, selection and strategy."""
    return digest(space.model_dump(mode="json", exclude={"budget", "select", "strategy"}))


class StudyMismatch(Exception):
    """The run folder's study was made from a different space."""


def open_study(
    space: Space,
    target: str,
    storage: str | optuna.storages.BaseStorage,
    seed: int,
    study_name: str | None = None,
    worker: str = "",
) -> optuna.Study:
    """Create the study, or join it when it exists and was made from the same space and target.

    The sampler (`strategy.sampler`) is seeded with `seed` for a new study, and with a seed
    derived from it, the number of trials so far and `worker` (one of several sharing the study)
    otherwise.
    """
    name = study_name or space.name
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=list(space.objectives.values()),
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
            f"the study {name!r} was made from a different space file or target "
            f"(target {stored['target']}, space hash {stored['space_hash']}; this space file "
            f"{space.source} has {identity['space_hash']}); use another study (--study, --out) or "
            "the same space file and target to continue it"
        )
    trials_so_far = len(study.get_trials(deepcopy=False))
    study.sampler = make_sampler(
        space.strategy.sampler, sampler_seed(seed, trials_so_far, worker), space
    )
    return study


def count(study: optuna.Study, *states: optuna.trial.TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


@dataclass
class Outcome:
    """How `run_study` ended: the budget, the timeout, or too many failed or pruned trials in a
    row."""

    completed: int
    failures_in_a_row: int = 0
    pruned_in_a_row: int = 0
    last_error: str = ""

    def stop_reason(self, strategy: StrategySection) -> str | None:
        if self.failures_in_a_row >= strategy.max_failures:
            return (
                f"stopped after {self.failures_in_a_row} failed trials in a row "
                f"(--max-failures {strategy.max_failures}); the last: {self.last_error}"
            )
        if self.pruned_in_a_row >= strategy.max_pruned:
            return (
                f"stopped after {self.pruned_in_a_row} pruned trials in a row "
                f"(strategy.max_pruned {strategy.max_pruned}): the sampler keeps proposing "
                "trainings the pruning rule stops"
            )
        return None


def run_study(
    run: Run,
    study: optuna.Study,
    trials: int,
    timeout: float | None,
    tidy: Callable[[], None] = lambda: None,
) -> Outcome:
    """Run trials until `trials` completed trials exist in the study, the timeout, or too many
    failed or pruned trials in a row (`strategy.max_failures`, `strategy.max_pruned`).

    While other workers' running trials would fill the budget this worker waits: one of them may
    still fail. `tidy` fails the trials of workers that died, between waits."""
    state = optuna.trial.TrialState
    outcome = Outcome(completed=count(study, state.COMPLETE))

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        tidy()
        if trial.user_attrs.get(PRUNED) == SURPLUS:
            return
        outcome.failures_in_a_row = (
            outcome.failures_in_a_row + 1 if trial.state == state.FAIL else 0
        )
        outcome.pruned_in_a_row = outcome.pruned_in_a_row + 1 if trial.state == state.PRUNED else 0
        if trial.state == state.FAIL:
            outcome.last_error = trial.user_attrs.get("error", "")
        outcome.completed = count(study, state.COMPLETE)
        run.progress.completed(outcome.completed, trials)
        if outcome.stop_reason(run.space.strategy) or not wait_for_room(study, trials, tidy):
            study.stop()

    if wait_for_room(study, trials, tidy):
        study.optimize(
            objective(run, trials, tidy),
            timeout=timeout,
            catch=(Exception,),
            callbacks=[after_trial],
            gc_after_trial=True,
        )
    outcome.completed = count(study, state.COMPLETE)
    return outcome
