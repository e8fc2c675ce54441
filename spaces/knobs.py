"""The knobs a space may search: one table of name, value type, the stage it feeds, and help.

A knob in `search:` is a fixed value, `{choices: [...]}` or a range `{low, high, log, step}`.
Each value a space gives is checked by pydantic against the knob's type (strictly: `true` is not
a rank, `"8"` is not a number). Knobs of the `train` stage determine the adapter; knobs of the
`export` stage only the ONNX model, so trials that differ in them share one trained adapter
(the precision siblings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

# Precisions the onnxruntime-genai model builder writes.
ALL_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")
METHODS = ("lora", "qlora")
# The builder's int4 quantisation algorithms (option `algo_config`, onnxruntime-genai 0.18). The
# `_last` / `_mixed` ones keep the LM head (and for `_mixed` the most sensitive layers) at int8.
SCHEDULES = ("one_cycle", "linear", "cosine", "constant")
INT4_ALGOS = ("default", "rtn", "k_quant", "rtn_last", "k_quant_last", "k_quant_mixed")


@dataclass(frozen=True)
class KnobDef:
    """One searchable knob."""

    type: Any  # the type (with its bounds) every value must have, checked by pydantic
    stage: Literal["train", "export"]
    help: str
    expected: str = ""  # what a valid value is, in words (a Literal's values by default)
    # Whether a numeric range `{low, high}` may stand for it (categorical knobs take choices).
    ranged: bool = False
    integer: bool = False  # a range of it suggests integers

    def accepts(self, value: Any) -> bool:
        """Whether `value` is valid for this knob (strictly: `true` is no number)."""
        if isinstance(value, bool) and self.type is not bool:
            return False
        try:
            TypeAdapter(self.type).validate_python(value, strict=True)
        except ValidationError:
            return False
        return True

    def describe_expected(self) -> str:
        if self.expected:
            return self.expected
        return f"one of {get_args(self.type)}"


KNOBS: dict[str, KnobDef] = {
    "lora_r": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "LoRA rank",
        "a positive integer",
        ranged=True,
        integer=True,
    ),
    "lora_alpha": KnobDef(
        Annotated[float, Field(gt=0)],
        "train",
        "LoRA scale numerator (alpha / r scales B·A); default 2 * lora_r",
        "a positive number",
        ranged=True,
    ),
    "lora_dropout": KnobDef(
        Annotated[float, Field(ge=0, le=0.9)],
        "train",
        "dropout on the LoRA branch (default 0.05)",
        "a number in [0, 0.9]",
        ranged=True,
    ),
    "learning_rate": KnobDef(
        Annotated[float, Field(gt=0, le=1)],
        "train",
        "peak learning rate",
        "a number in (0, 1]",
        ranged=True,
    ),
    "method": KnobDef(Literal[METHODS], "train", "lora, or qlora on a 4-bit base"),
    "batch_size": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "training batch size",
        "a positive integer",
        ranged=True,
        integer=True,
    ),
    "gradient_checkpointing": KnobDef(
        bool, "train", "recompute activations to save memory", "true or false"
    ),
    "gradient_accumulation_steps": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "micro-batches per optimiser step (an effective batch of batch_size times this)",
        "a positive integer",
        ranged=True,
        integer=True,
    ),
    "max_grad_norm": KnobDef(
        Annotated[float, Field(ge=0)],
        "train",
        "clip the gradient norm to this before each step (Olive's example: 0.3); 0: no clipping",
        "a number >= 0",
        ranged=True,
    ),
    "weight_decay": KnobDef(
        Annotated[float, Field(ge=0, le=1)],
        "train",
        "AdamW's decoupled weight decay on the LoRA weights (default 0.01)",
        "a number in [0, 1]",
        ranged=True,
    ),
    "warmup_ratio": KnobDef(
        Annotated[float, Field(ge=0, lt=1)],
        "train",
        "share of the steps the learning rate rises from zero (not one_cycle; default 0.03)",
        "a number in [0, 1)",
        ranged=True,
    ),
    "lr_schedule": KnobDef(
        Literal[SCHEDULES], "train", "the learning-rate schedule (candidates/recipe.py)"
    ),
    "adam_beta1": KnobDef(
        Annotated[float, Field(ge=0, lt=1)],
        "train",
        "AdamW's first-moment decay (default 0.9)",
        "a number in [0, 1)",
        ranged=True,
    ),
    "adam_beta2": KnobDef(
        Annotated[float, Field(ge=0, lt=1)],
        "train",
        "AdamW's second-moment decay (default 0.999)",
        "a number in [0, 1)",
        ranged=True,
    ),
    "max_steps": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "optimiser steps of the training, instead of `epochs` (Olive's example: 10)",
        "a positive integer",
        ranged=True,
        integer=True,
    ),
    "precision": KnobDef(Literal[ALL_PRECISIONS], "export", "the ONNX model's weight precision"),
    "int4_block_size": KnobDef(
        Literal[16, 32, 64, 128, 256], "export", "int4 quantisation block size (builder default 32)"
    ),
    "int4_accuracy_level": KnobDef(
        Literal[0, 1, 2, 3, 4], "export", "int4 MatMul accuracy level (4: int8 activations)"
    ),
    "int4_algo": KnobDef(Literal[INT4_ALGOS], "export", "the builder's int4 algorithm"),
    "shared_embeddings": KnobDef(
        bool,
        "export",
        "one matrix for a tied embedding table and LM head (the builder's default for tied "
        "models); false keeps the table unquantised while the head is quantised",
        "true or false",
    ),
    "prune_lm_head": KnobDef(
        bool,
        "export",
        "logits for the last prompt position only during prefill (a shorter time to first "
        "token; label scoring then appends label tokens one at a time)",
        "true or false",
    ),
}
REQUIRED_KNOBS = ("lora_r", "learning_rate", "precision")
EXPORT_KNOBS = tuple(name for name, knob in KNOBS.items() if knob.stage == "export")
# Knobs that exist only for an int4 export.
INT4_KNOBS = tuple(name for name in EXPORT_KNOBS if name.startswith("int4_"))
# Training settings that may be fixed in `train` or searched in `search` (one or the other).
TRAIN_KNOBS = (
    "method",
    "batch_size",
    "gradient_checkpointing",
    "gradient_accumulation_steps",
    "max_grad_norm",
    "weight_decay",
    "warmup_ratio",
    "lr_schedule",
    "adam_beta1",
    "adam_beta2",
    "max_steps",
)


class Strict(BaseModel):
    """A space-file section: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Choices(Strict):
    """A categorical knob: `{choices: [8, 16, 32]}`."""

    choices: list[bool | int | float | str] = Field(min_length=1)


class Range(Strict):
    """A numeric knob: `{low: 1e-5, high: 1e-3, log: true}`; `step` makes it discrete."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"expected low > 0 for a log range, got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("expected either log or step, not both")
        return self


Knob = bool | int | float | str | Choices | Range


def knob_values(knob: Knob) -> list[Any]:
    """The values a categorical or fixed knob can take (a range gives its bounds)."""
    if isinstance(knob, Choices):
        return list(knob.choices)
    if isinstance(knob, Range):
        return [knob.low, knob.high]
    return [knob]
