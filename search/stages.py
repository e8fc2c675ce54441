"""The four stages of a candidate, each cached under the hash of everything that determines it.

A key names the stage's inputs (the key of the stage before it, the parameters) and the versions
of the tools that made the entry, taken from the machine's description the run read once
(`evaluators.environment.versions`): torch, transformers, peft and bitsandbytes for adapters and
merges, the onnxruntime-genai builder with onnx and onnx-ir for exports; a measurement's key holds
the whole machine description, onnxruntime and onnxruntime-genai included. An upgrade makes new
entries instead of reusing ones an older release made.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna

from autotune.candidates.cache import digest
from autotune.candidates.export import ExportParams, export_onnx
from autotune.candidates.merge import merge_adapter
from autotune.candidates.subset import stratified_take
from autotune.candidates.throughput import RATES_FILE
from autotune.candidates.train import TrainParams, load_train_result, total_steps, train_adapter
from autotune.decisions.median import SETTLED
from autotune.decisions.record import Verdict
from autotune.evaluators.accuracy import metric_location
from autotune.evaluators.environment import EXPORT_TOOLS, TRAINING_TOOLS, tools
from autotune.evaluators.likelihood import TopK
from autotune.evaluators.measurement import benchmark
from autotune.search.fidelity import promoted_through, train_in_rungs
from autotune.search.pruning import MedianRule, earlier_verdict
from autotune.search.racing import Raced, Racer
from autotune.search.record import Attr, Stopped
from autotune.search.run import Run

MEASUREMENT = "measurement.json"
GENERATIONS = "generations.jsonl"  # what the model said (search/trial.py write_generations)


def adapter_key(
    base_key: str, data_identity: str, training: TrainParams, versions: dict[str, str]
) -> str:
    return digest(
        {
            "base": base_key,
            "data": data_identity,
            "train": asdict(training),
            "tools": tools(versions, TRAINING_TOOLS),
        }
    )


def merged_key(adapter: str, dtype: str, versions: dict[str, str]) -> str:
    return digest({"adapter": adapter, "dtype": dtype, "tools": tools(versions, TRAINING_TOOLS)})


def export_key(merged: str, exporting: ExportParams, versions: dict[str, str]) -> str:
    return digest(
        {"merged": merged, "export": asdict(exporting), "tools": tools(versions, EXPORT_TOOLS)}
    )


def make_adapter(run: Run, training: TrainParams, trial: optuna.Trial) -> tuple[str, Path]:
    """The adapter's key and folder: trained in rungs by successive halving (search/fidelity.py,
    the default), or straight and perhaps pruned at its checkpoints by the median rule
    (search/pruning.py), where a configuration pruned before is pruned again without training."""
    key = adapter_key(run.base.key, run.train_identity, training, run.versions)
    trial.set_user_attr(Attr.ADAPTER_KEY, key)
    strategy = run.space.strategy
    verdict = training_verdict(trial, key, strategy.fidelity is not None or strategy.prune)
    if strategy.fidelity is not None:
        return key, train_in_rungs(
            trial,
            key,
            total_steps(training, len(run.dataset.train)),
            strategy.fidelity,
            run.cache.get_or_build,
            lambda out, stop, resume: train_part(run, training, trial, out, stop, resume),
            settled=verdict == SETTLED,
            promoted_through=promoted_through(trial.study, trial),
        )
    if verdict not in (None, SETTLED):
        raise Stopped(Verdict.JUDGED, f"pruned before, {verdict}")
    rule = None  # judges only configurations no earlier trial settled
    if strategy.prune and verdict is None:
        rule = MedianRule(
            trial, key, strategy.checkpoints, strategy.prune_after, strategy.prune_from
        )
    built_here: list[Path] = []  # filled when this trial trains it: no cache hit, no other worker

    def build(out: Path) -> None:
        built_here.append(out)
        train_part(run, training, trial, out, rule=rule)

    path = run.cache.get_or_build("adapter", key, build)
    if rule is not None and not built_here:  # a cached training is judged as a new one would be
        for index, loss in enumerate(load_train_result(path).checkpoint_losses):
            rule(index, loss)
    return key, path


def training_verdict(trial: optuna.Trial, key: str, judging: bool) -> str | None:
    """`SETTLED` for a training not to be judged again, else the reason an earlier trial of
    configuration `key` was pruned, or None (read only when the strategy is `judging`).

    A sibling's training is settled whatever the study holds: it was queued once its training
    had finished, though the trial that trained it may still be exporting and measuring (in
    another worker, say: a promoted trial whose paused predecessor ranked badly at a rung)."""
    if Attr.SIBLING_OF in trial.user_attrs:
        return SETTLED
    return earlier_verdict(trial.study, key) if judging else None


def train_part(
    run: Run,
    training: TrainParams,
    trial: optuna.Trial,
    out: Path,
    stop: int | None = None,
    resume: Path | None = None,
    rule: MedianRule | None = None,
) -> None:
    """Train the adapter (or the part up to step `stop`, continuing from `resume`) into `out`.

    The median rule's checkpoints are taken when it judges, and in a rung training that stops
    nothing (`fidelity.stop: false`), whose losses are then a ground truth for both rules."""
    strategy = run.space.strategy
    trial.set_user_attr(Attr.TRAINED_HERE, True)  # for the record: not a cache hit
    recording = strategy.fidelity is not None and not strategy.fidelity.stop
    train_adapter(
        run.base.path,
        run.dataset.train,
        stratified_take(
            run.dataset.eval, strategy.checkpoint_examples, run.dataset.labels is not None
        ),
        training,
        out,
        trust_remote_code=run.space.model.trust_remote_code,
        checkpoints=strategy.checkpoints if rule is not None or recording else 0,
        on_checkpoint=rule,
        on_step=run.events.training_step,
        stop_at=stop,
        resume=resume,
        rates=run.cache.root / RATES_FILE,
    )


def make_merged(run: Run, adapter: str, adapter_dir: Path, dtype: str) -> tuple[str, Path]:
    """The adapter merged into the unquantised base, saved in the training's compute dtype."""
    key = merged_key(adapter, dtype, run.versions)
    trust = run.space.model.trust_remote_code
    path = run.cache.get_or_build(
        "merged",
        key,
        lambda out: merge_adapter(
            run.base.path, adapter_dir, out, dtype=dtype, trust_remote_code=trust
        ),
    )
    return key, path


def make_onnx(run: Run, merged: str, merged_dir: Path, exporting: ExportParams) -> tuple[str, Path]:
    key = export_key(merged, exporting, run.versions)
    path = run.cache.get_or_build("onnx", key, lambda out: export_onnx(merged_dir, exporting, out))
    return key, path


def onnx_exists(run: Run, merged: str, exporting: ExportParams) -> bool:
    return run.cache.has("onnx", export_key(merged, exporting, run.versions))


# Bumped when a measurement gains figures, so entries an older autotune made are not reused.
MEASURED_FIGURES = 2  # 2: the reference's likelihood, agreement with the twin, text metrics
TOPK = "topk.npz"  # an unquantised model's log-probabilities, kept for its quantised twins


@dataclass(frozen=True)
class Twin:
    """A quantised trial's unquantised twin: its export's key and its measurement (whose `topk`
    entry is the file of its log-probabilities)."""

    onnx_key: str
    measurement: dict[str, Any]

    @property
    def topk(self) -> Path | None:
        found = self.measurement.get("topk")
        return Path(found) if found else None


def measurement_key(run: Run, onnx: str, twin: Twin | None = None, keep_topk: bool = False) -> str:
    space = run.space
    return digest(
        {
            "onnx": onnx,
            "eval": run.eval_identity,
            "metric": str(metric_location(space.data.metric, space.root)),
            "latency": space.latency.model_dump(exclude={"stat"}),
            "target": run.target,
            "machine": run.environment,  # onnxruntime and onnxruntime-genai versions included
            "figures": MEASURED_FIGURES,
            "twin": twin.onnx_key if twin is not None and twin.topk is not None else None,
            "keep_topk": keep_topk,
        }
    )


def make_measurement(
    run: Run,
    onnx: str,
    onnx_dir: Path,
    race: Racer | None = None,
    twin: Twin | None = None,
    keep_topk: bool = False,
) -> dict[str, Any]:
    """The candidate's figures (measurement.json), measured once per model, settings and machine.

    With `race` (search/racing.py) a measurement not cached yet is raced; one that stops raises
    `Raced` with its partial figures, which never enter the cache (the build's folder goes).
    With `twin` (its log-probabilities kept) the agreement figures are measured against it;
    `keep_topk` keeps this model's log-probabilities for its own quantised twins (`TOPK`)."""
    space = run.space
    metric_module = metric_location(space.data.metric, space.root)
    key = measurement_key(run, onnx, twin, keep_topk)
    twin_topk = twin.topk if twin is not None else None

    def measure(out: Path) -> None:
        result = benchmark(
            onnx_dir,
            run.target,
            space.latency,
            run.dataset.eval,
            run.dataset.labels,
            str(metric_module),
            environment=run.environment,
            label_texts=run.dataset.label_texts,
            stages=race.stages if race else (),
            stop=race,
            twin=TopK.load(twin_topk) if twin_topk is not None else None,
            keep_topk=keep_topk,
        )
        if result.stopped and race is not None and race.verdict is not None:
            raise Raced(result.to_json(), race.verdict)
        (out / MEASUREMENT).write_text(json.dumps(result.to_json(), indent=2))
        if result.topk is not None:
            result.topk.save(out / TOPK)

    path = run.cache.get_or_build("measure", key, measure)
    found = json.loads((path / MEASUREMENT).read_text())
    if (path / TOPK).is_file():
        found["topk"] = str(path / TOPK)
    return found
