"""The recipe for one candidate: train -> merge -> export -> measure, then record it.

`run_trial` is the recipe, read top to bottom; what every trial of a study shares (the data
split, the base model, the folders) is a `Run` (search/run.py). The stages and their cache keys
are in search/stages.py; what a trial leaves in the study is a `TrialRecord` (search/record.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna

from autotune.candidates.export_summary import read_summary
from autotune.candidates.train import TrainResult, load_train_result, throughput_metrics
from autotune.decisions.derived import unquantised
from autotune.decisions.record import TrialRecord, Verdict
from autotune.search.budget import repeat_of
from autotune.search.derived import derived_metrics, twin_of
from autotune.search.events import StudyEvents
from autotune.search.fidelity import loss_curve
from autotune.search.params import export_params, suggest, train_params
from autotune.search.racing import Raced, racer, record_raced
from autotune.search.record import Attr, Stopped, metrics_json, reference_record, stored_attrs
from autotune.search.run import Run
from autotune.search.siblings import enqueue_siblings
from autotune.search.stages import (
    GENERATIONS,
    MEASUREMENT,
    make_adapter,
    make_measurement,
    make_merged,
    make_onnx,
)


@contextmanager
def timed(
    seconds: dict[str, float], stage: str, events: StudyEvents, shown: str = ""
) -> Iterator[None]:
    """Time the block into `seconds[stage]`, shown to the onlooker as `shown` (default: stage)."""
    start = time.perf_counter()
    with events.step(shown or stage):
        yield
    seconds[stage] = round(time.perf_counter() - start, 3)


def run_trial(trial: optuna.Trial, run: Run) -> tuple[float, ...]:
    """The recipe for one candidate; returns the objective values in the space's order."""
    space = run.space
    values = suggest(trial, space)
    trial.set_user_attr(Attr.PARAMS, values)
    if (earlier := repeat_of(trial)) is not None:  # not run again (search/budget.py)
        raise Stopped(Verdict.REPEAT, f"a repeat of trial {earlier}: its figures stand")
    training, exporting = train_params(values, space), export_params(values, run.target)
    seconds: dict[str, float] = {}
    run.events.trial_started(trial.number, values)

    with timed(seconds, "train", run.events):
        adapter_key, adapter = make_adapter(run, training, trial)
    if Attr.SIBLING_OF not in trial.user_attrs:  # queued once per training configuration
        enqueue_siblings(trial.study, space, trial)
    with timed(seconds, "merge", run.events):
        merged_key, merged = make_merged(run, adapter_key, adapter, training.dtype)
    with timed(seconds, "export", run.events):
        onnx_key, onnx_dir = make_onnx(run, merged_key, merged, exporting)
    with timed(seconds, "twin", run.events, "unquantised twin"):  # search/derived.py
        twin = twin_of(run, merged_key, merged, values)
    with timed(seconds, "measure", run.events):
        try:  # a label-scoring candidate may stop early, dominated (search/racing.py)
            measurement = make_measurement(
                run,
                onnx_key,
                onnx_dir,
                racer(run, trial.study),
                twin=twin,
                keep_topk=unquantised(values["precision"], run.target),
            )
        except Raced as raced:
            measured = how_measured(run, raced.measurement, onnx_dir)
            raise record_raced(trial, run, raced, seconds, measured, onnx_dir) from None

    derived = derived_metrics(
        run, measurement["metrics"], reference_metrics(trial.study), twin, values
    )

    trained = load_train_result(adapter)
    record = TrialRecord(
        number=trial.number,
        state="COMPLETE",
        params=values,
        metrics={
            **measurement["metrics"],
            **derived,
            "train_loss": trained.train_loss,
            "eval_loss": trained.eval_loss,
            **train_cost(trained),
        },
        seconds=seconds,
        onnx_dir=str(onnx_dir),
        measured=how_measured(run, measurement, onnx_dir),
    )
    trial.set_user_attr(Attr.CHECKPOINT_LOSSES, list(trained.checkpoint_losses))
    trial.set_user_attr(Attr.LOSS_CURVE, loss_curve(trained))
    save_record(trial, run, record, measurement)
    result = {name: space.metric(record.metrics, name) for name in space.objectives}
    run.events.trial_done(trial.number, seconds, result)
    return tuple(result.values())


def reference_metrics(study: optuna.Study) -> dict[str, float] | None:
    reference = reference_record(study)
    return reference.metrics if reference is not None else None


def train_cost(trained: TrainResult) -> dict[str, float]:
    """What training the trial's adapter took (a cached adapter keeps its figures)."""
    cost = {"train_s": trained.seconds, **throughput_metrics(trained)}
    if trained.peak_mem_mb is not None:
        cost["train_peak_mem_mb"] = trained.peak_mem_mb
    return cost


def save_record(
    trial: optuna.Trial, run: Run, record: TrialRecord, measurement: dict[str, Any]
) -> None:
    """The record in the study (user attributes, and each constraint's violation through
    `set_constraint`, which is what feasibility is read from) and in trials/<n>/."""
    for key, value in stored_attrs(record).items():
        trial.set_user_attr(key, value)
    for constraint in run.space.parsed_constraints():
        value = run.space.metric(record.metrics, constraint.metric)
        trial.set_constraint(str(constraint), constraint.violation(value))
    folder = run.trial_dir(trial.number)
    (folder / "metrics.json").write_text(json.dumps(metrics_json(record), indent=2))
    (folder / MEASUREMENT).write_text(json.dumps(measurement, indent=2))
    write_generations(folder / GENERATIONS, run, measurement)


def write_generations(path: Path, run: Run, measurement: dict[str, Any]) -> None:
    """What the model said, one JSON line per eval example: the prompt, the reference, the
    prediction and its per-example scores (the report and the model card show some)."""
    accuracy = measurement.get("accuracy") or {}
    predictions = accuracy.get("predictions") or []
    scores = dict(accuracy.get("scores") or {})
    scores.update({k: v for k, v in (measurement.get("likelihood") or {}).items() if k != "tokens"})
    lines = []
    for i, (example, prediction) in enumerate(zip(run.dataset.eval, predictions, strict=False)):
        row = {
            "prompt": example.prompt,
            "reference": example.completion.strip(),
            "prediction": prediction,
            "scores": {name: values[i] for name, values in scores.items() if i < len(values)},
        }
        lines.append(json.dumps(row))
    path.write_text("".join(line + "\n" for line in lines))


def per_example_scores(measurement: dict[str, Any]) -> dict[str, list[float]]:
    """Each quality figure's per-example scores, rounded (they live in the study storage)."""
    found = dict((measurement.get("accuracy") or {}).get("scores") or {})
    likelihood = measurement.get("likelihood") or {}
    found.update({k: v for k, v in likelihood.items() if k != "tokens"})
    return {name: [round(float(v), 5) for v in values] for name, values in found.items()}


def how_measured(run: Run, measurement: dict[str, Any], onnx_dir: Path) -> dict[str, Any]:
    """How and where a trial's figures were taken, and what its export did (which weights ended
    in which precision), for reports and model cards."""
    latency = measurement["latency"]
    accuracy = measurement.get("accuracy") or {}
    return {
        "export": read_summary(onnx_dir),
        "accuracy_method": "label scoring" if run.dataset.labels else "greedy generation",
        "metric": run.space.data.metric if not run.dataset.labels else "classification",
        "headline": run.space.headline_metric(),
        "train_examples": len(run.dataset.train),
        "eval_examples": len(run.dataset.eval),
        "latency": {
            **latency["settings"],
            "repeats_done": latency["repeats"],
            "attempts": len(latency.get("attempts", [])),
            "noisy": latency.get("noisy", []),
        },
        # what paired comparisons need (decisions/dominance.py): right or wrong per eval example,
        # each quality figure's per-example scores, and the latency repeats
        "correct": accuracy.get("correct", ""),
        "scores": per_example_scores(measurement),
        "collapse": measurement.get("collapse") or {},
        "latency_samples": latency.get("samples", {}),
        "environment": measurement.get("environment") or run.environment,
    }
