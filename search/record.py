"""What one trial leaves in the study: the user-attribute keys, and the conversion of Optuna
trials to and from typed `TrialRecord`s (decisions/record.py).

The study writes a trial's figures with `stored_attrs(record)`; the search's rules, the reports
and the terminal summary read trials back with `record_of(trial)` (or `read_trials(study)`, the
whole study in one read). Every user-attribute key is named once, in `Attr`. Feasibility is what
Optuna stored with `trial.set_constraint` when the trial completed (`FrozenTrial.constraints`),
never recomputed from the metrics.
"""

from __future__ import annotations

from typing import Any

import optuna

from autotune.decisions.record import Raced, Rung, TrialRecord, Verdict

State = optuna.trial.TrialState
# Shown for a trial Optuna failed because its worker stopped sending heartbeats.
STALE = "interrupted: the worker running this trial stopped sending heartbeats"
# Shown for a trial whose configuration was not run again (strategy.max_retries).
GAVE_UP = "gave up after {retries} retries: {reason}"
# Optuna's system attribute of a trial taken from the queue (`Study.enqueue_trial`).
FIXED_PARAMS = "fixed_params"


class Attr:
    """The trial user-attribute keys autotune writes."""

    PARAMS = "params"  # every knob's value, suggested, fixed or default
    METRICS = "metrics"  # figures by trials-table column (accuracy, decode_ms.p50, train_s, ...)
    SECONDS = "seconds"  # seconds per stage (train, merge, export, measure)
    ONNX_DIR = "onnx_dir"  # the exported model folder (in the stage cache)
    MEASURED = "measured"  # how and where the figures were taken (settings, examples, machine)
    ADAPTER_KEY = "adapter_key"  # the training configuration's cache key
    CHECKPOINT_LOSSES = "checkpoint_losses"  # eval loss at each training checkpoint
    # this trial ran (part of) its training, not a cache hit: a fact for the record (workers'
    # tests, cost benches), never read back by the search
    TRAINED_HERE = "trained_here"
    RUNG = "rung"  # multi-fidelity: decisions.record.Rung as JSON (fidelity.py)
    LOSS_CURVE = "loss_curve"  # {"train": [[step, loss], ...], "eval": [[step, loss], ...]}
    RACED = "raced"  # racing evaluation: decisions.record.Raced as JSON, when it stopped
    VERDICT = "verdict"  # why it was pruned: a decisions.record.Verdict kind
    PRUNED = "pruned"  # why the trial was pruned, in words
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


class Stopped(optuna.TrialPruned):
    """A trial pruned for a reason the search decides on later (`Verdict`), with its words."""

    def __init__(self, verdict: Verdict, reason: str):
        super().__init__(reason)
        self.verdict = verdict


def stored_attrs(record: TrialRecord) -> dict[str, Any]:
    """The figures a measured trial stores (constraints go through `set_constraint`)."""
    return {
        Attr.PARAMS: record.params,
        Attr.METRICS: record.metrics,
        Attr.SECONDS: record.seconds,
        Attr.ONNX_DIR: record.onnx_dir,
        Attr.MEASURED: record.measured,
    }


def metrics_json(record: TrialRecord) -> dict[str, Any]:
    """trials/<n>/metrics.json (how it was measured is in measurement.json beside it)."""
    return {k: v for k, v in stored_attrs(record).items() if k != Attr.MEASURED}


def record_of(trial: optuna.trial.FrozenTrial, gave_up: str = "") -> TrialRecord:
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
    verdict = attrs.get(Attr.VERDICT)
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        params=dict(attrs.get(Attr.PARAMS, trial.params)),
        suggested=dict(trial.params),
        metrics=dict(attrs.get(Attr.METRICS, {})),
        seconds=dict(attrs.get(Attr.SECONDS, {})),
        onnx_dir=attrs.get(Attr.ONNX_DIR, ""),
        measured=dict(attrs.get(Attr.MEASURED, {})),
        constraints=dict(trial.constraints) if trial.state == State.COMPLETE else {},
        reason=reason,
        verdict=Verdict(verdict) if verdict else None,
        sibling_of=attrs.get(Attr.SIBLING_OF),
        retry_of=attrs.get(Attr.RETRY_OF),
        promoted_from=attrs.get(Attr.PROMOTED_FROM),
        queued=trial.system_attrs.get(FIXED_PARAMS) is not None,
        worker=attrs.get(Attr.WORKER, ""),
        adapter_key=attrs.get(Attr.ADAPTER_KEY, ""),
        loss_curve=dict(attrs.get(Attr.LOSS_CURVE) or {}),
        checkpoint_losses=tuple(attrs.get(Attr.CHECKPOINT_LOSSES) or ()),
        rung=Rung.from_json(attrs.get(Attr.RUNG)),
        raced=Raced.from_json(attrs.get(Attr.RACED)),
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
    """Every trial of the study, in order, in one read of the storage."""
    notes = study.user_attrs
    return [
        record_of(t, notes.get(f"{Attr.GAVE_UP}:{t.number}", ""))
        for t in study.get_trials(deepcopy=False)
    ]
