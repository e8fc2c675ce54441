"""The trial record: what one trial leaves in the study, in one type for writers and readers.

The study writes a trial's figures with `TrialRecord.to_user_attrs()`; the reports (and the
terminal summary) read any trial back with `TrialRecord.from_trial()`. Every user-attribute key
is named once, in `Attr`. Feasibility is what Optuna stored with `trial.set_constraint` when the
trial completed (`FrozenTrial.constraints`), never recomputed from the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna

State = optuna.trial.TrialState
# Shown for a trial Optuna failed because its worker stopped sending heartbeats.
STALE = "interrupted: the worker running this trial stopped sending heartbeats"
# Shown for a trial whose configuration was not run again (strategy.max_retries).
GAVE_UP = "gave up after {retries} retries: {reason}"


class Attr:
    """The trial user-attribute keys autotune writes."""

    PARAMS = "params"  # every knob's value, suggested, fixed or default
    METRICS = "metrics"  # figures by trials-table column (accuracy, decode_ms.p50, train_s, ...)
    SECONDS = "seconds"  # seconds per stage (train, merge, export, measure)
    ONNX_DIR = "onnx_dir"  # the exported model folder (in the stage cache)
    MEASURED = "measured"  # how and where the figures were taken (settings, examples, machine)
    ADAPTER_KEY = "adapter_key"  # the training configuration's cache key
    CHECKPOINT_LOSSES = "checkpoint_losses"  # eval loss at each training checkpoint
    RUNG = "rung"  # multi-fidelity: {reached, of, steps, losses, stopped, bracket} (fidelity.py)
    LOSS_CURVE = "loss_curve"  # {"train": [[step, loss], ...], "eval": [[step, loss], ...]}
    RACED = "raced"  # racing evaluation: {examples, of, dominated_by, reason} when it stopped
    TRAINED_HERE = "trained_here"  # this trial ran the training (not a cache hit)
    PRUNED = "pruned"  # why the trial was pruned
    ERROR = "error"  # why the trial failed
    SIBLING_OF = "sibling_of"  # the trial whose new adapter this one reuses
    PROMOTED_FROM = "promoted_from"  # the paused trial whose training this one continues
    RETRY_OF = "retry_of"  # the interrupted trial this one runs again
    RETRIES = "retries"  # how many times this configuration was run again
    GAVE_UP = "gave_up"  # study attribute `gave_up:<n>`: trial n was not run again, and why
    WORKER = "worker"  # the process that ran it: host:pid:start
    REFERENCE = "reference"  # study attribute: the untrained base, measured like a candidate
    CONFIRMATION = "confirmation"  # study attribute: the top tier timed again, in turns
    LATENCY_PROMPTS = "latency_prompts"  # study attribute: the task requests' eval prompts


@dataclass
class TrialRecord:
    """One trial as autotune sees it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    onnx_dir: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)  # constraint -> violation
    reason: str = ""  # why it failed or was pruned
    sibling_of: int | None = None
    retry_of: int | None = None
    worker: str = ""
    adapter_key: str = ""  # the training's cache key: siblings and repeats share one training
    loss_curve: dict[str, list[list[float]]] = field(default_factory=dict)  # train, eval
    rung: dict[str, Any] = field(default_factory=dict)  # multi-fidelity: how far it trained

    @property
    def complete(self) -> bool:
        return self.state == State.COMPLETE.name

    @property
    def feasible(self) -> bool | None:
        """Whether a completed trial met every constraint (None for other trials)."""
        if not self.complete:
            return None
        return all(v <= 0 for v in self.constraints.values())

    def to_user_attrs(self) -> dict[str, Any]:
        """The figures a completed trial stores (constraints go through `set_constraint`)."""
        return {
            Attr.PARAMS: self.params,
            Attr.METRICS: self.metrics,
            Attr.SECONDS: self.seconds,
            Attr.ONNX_DIR: self.onnx_dir,
            Attr.MEASURED: self.measured,
        }

    def to_json(self) -> dict[str, Any]:
        """trials/<n>/metrics.json (how it was measured is in measurement.json beside it)."""
        return {k: v for k, v in self.to_user_attrs().items() if k != Attr.MEASURED}

    @classmethod
    def from_trial(cls, trial: optuna.trial.FrozenTrial, gave_up: str = "") -> TrialRecord:
        """The record of `trial`; `gave_up` is what the study noted when it stopped retrying it
        (a trial Optuna failed by heartbeat takes no more attributes of its own)."""
        attrs = trial.user_attrs
        reason = (
            gave_up
            or attrs.get(Attr.ERROR)
            or attrs.get(Attr.PRUNED)
            or trial.system_attrs.get("fail_reason", "")
            or (STALE if trial.state == State.FAIL else "")
        )
        return cls(
            number=trial.number,
            state=trial.state.name,
            params=dict(attrs.get(Attr.PARAMS, trial.params)),
            metrics=dict(attrs.get(Attr.METRICS, {})),
            seconds=dict(attrs.get(Attr.SECONDS, {})),
            onnx_dir=attrs.get(Attr.ONNX_DIR, ""),
            measured=dict(attrs.get(Attr.MEASURED, {})),
            constraints=dict(trial.constraints) if trial.state == State.COMPLETE else {},
            reason=reason,
            sibling_of=attrs.get(Attr.SIBLING_OF),
            retry_of=attrs.get(Attr.RETRY_OF),
            worker=attrs.get(Attr.WORKER, ""),
            adapter_key=attrs.get(Attr.ADAPTER_KEY, ""),
            loss_curve=dict(attrs.get(Attr.LOSS_CURVE) or {}),
            rung=dict(attrs.get(Attr.RUNG) or {}),
        )


REFERENCE_STATE = "REFERENCE"


def reference_record(study: optuna.Study) -> TrialRecord | None:
    """The untrained base's record (search/reference.py), or None if the study has none."""
    stored = study.user_attrs.get(Attr.REFERENCE)
    if not isinstance(stored, dict):
        return None
    return TrialRecord(
        number=-1,
        state=REFERENCE_STATE,
        params=dict(stored.get(Attr.PARAMS, {})),
        metrics=dict(stored.get(Attr.METRICS, {})),
        seconds=dict(stored.get(Attr.SECONDS, {})),
        onnx_dir=stored.get(Attr.ONNX_DIR, ""),
        measured=dict(stored.get(Attr.MEASURED, {})),
    )


def read_trials(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of the study, in order."""
    notes = study.user_attrs
    return [
        TrialRecord.from_trial(t, notes.get(f"{Attr.GAVE_UP}:{t.number}", ""))
        for t in study.get_trials(deepcopy=False)
    ]
