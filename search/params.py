"""Turn the space's knobs into one trial's parameters.

Searched knobs are suggested through the Optuna trial (categorical for choices, int or float for
ranges); fixed knobs are used as given; the rest take their default from the knob table
(spaces/knobs.py), or a training setting the train section's. The result is split into what
determines the adapter (`TrainParams`) and what determines the ONNX model (`ExportParams`).
"""

from __future__ import annotations

from typing import Any

import optuna

from autotune.candidates.export import ExportParams
from autotune.candidates.train import TrainParams, resolve_dtype
from autotune.spaces import KNOBS, Choices, Range, Space, knob_values
from autotune.spaces.knobs import EXPORT_KNOBS, INT4_KNOBS, TRAIN_KNOBS


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Every knob's value for this trial (suggested or fixed), plus the defaults for the rest.

    The int4 knobs are only suggested when the trial's precision is int4 (define-by-run), so an
    fp32 trial is not told apart from another by a block size it does not use.
    """
    values: dict[str, Any] = {}
    ordered = sorted(space.search.items(), key=lambda item: item[0] in INT4_KNOBS)
    for name, knob in ordered:
        if name in INT4_KNOBS and values["precision"] != "int4":
            continue
        if isinstance(knob, Choices):
            values[name] = trial.suggest_categorical(name, knob.choices)
        elif isinstance(knob, Range) and KNOBS[name].integer:
            step = int(knob.step or 1)
            values[name] = trial.suggest_int(
                name, int(knob.low), int(knob.high), step=step, log=knob.log
            )
        elif isinstance(knob, Range):
            values[name] = trial.suggest_float(
                name, knob.low, knob.high, step=knob.step, log=knob.log
            )
        else:
            values[name] = knob
    return with_defaults(values, space)


def with_defaults(values: dict[str, Any], space: Space) -> dict[str, Any]:
    """`values` and every knob they leave out: a training setting as the train section has it,
    any other knob at its default in the knob table; a derived default (lora_alpha's) last, as
    it reads the others."""
    values = dict(values)
    for name, knob in KNOBS.items():
        if name not in TRAIN_KNOBS and not knob.required and not knob.derived:
            values.setdefault(name, knob.default)
    for name in TRAIN_KNOBS:  # fixed in the train section unless searched
        values.setdefault(name, getattr(space.train, name))
    for name, knob in KNOBS.items():
        if knob.derived and name not in values:
            values[name] = knob.default_for(values)
    return values


def train_params(values: dict[str, Any], space: Space) -> TrainParams:
    """The adapter's parameters; `train.dtype: auto` is resolved for the training device here,
    so that the stage cache tells a bf16 adapter from an fp32 one."""
    train = space.train
    qlora = values["method"] == "qlora"
    return TrainParams(
        lora_r=int(values["lora_r"]),
        lora_alpha=float(values["lora_alpha"]),
        lora_dropout=float(values["lora_dropout"]),
        learning_rate=float(values["learning_rate"]),
        epochs=train.epochs,
        batch_size=int(values["batch_size"]),
        max_seq_len=train.max_seq_len,
        target_modules=tuple(train.target_modules),
        seed=train.seed,
        method=values["method"],
        dtype=resolve_dtype(train.dtype),
        gradient_checkpointing=bool(values["gradient_checkpointing"]),
        quant_type=train.quant_type if qlora else None,
        double_quant=train.double_quant if qlora else None,
        lr_schedule=values["lr_schedule"],
        warmup_ratio=float(values["warmup_ratio"]),
        loss_span=train.loss_span,
        gradient_accumulation_steps=int(values["gradient_accumulation_steps"]),
        max_grad_norm=float(values["max_grad_norm"]),
        weight_decay=float(values["weight_decay"]),
        adam_beta1=float(values["adam_beta1"]),
        adam_beta2=float(values["adam_beta2"]),
        max_steps=None if values["max_steps"] is None else int(values["max_steps"]),
    )


def export_params(values: dict[str, Any], target: str) -> ExportParams:
    int4 = values["precision"] == "int4"
    return ExportParams(
        precision=values["precision"],
        target=target,
        int4_block_size=values["int4_block_size"] if int4 else None,
        int4_accuracy_level=values["int4_accuracy_level"] if int4 else None,
        int4_algo=values.get("int4_algo") if int4 else None,
        shared_embeddings=values.get("shared_embeddings"),
        prune_lm_head=values.get("prune_lm_head"),
    )


def first_export(space: Space, target: str, precision: str) -> ExportParams:
    """An export at `precision` with the first value of each other export knob the space
    searches: what the preflight checks and the untrained base is measured with."""
    values = {name: KNOBS[name].default for name in EXPORT_KNOBS} | {"precision": precision}
    for name in EXPORT_KNOBS:
        if name in space.search and name != "precision":
            values[name] = knob_values(space.search[name])[0]
    return export_params(values, target)
