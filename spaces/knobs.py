"""The knobs a space may search: one table of name, value type, the stage it feeds, default and
help.

A knob in `search:` is a fixed value, `{choices: [...]}` or a range `{low, high, log, step}`.
Each value a space gives is checked by pydantic against the knob's type (strictly: `true` is not
a rank, `"8"` is not a number). Knobs of the `train` stage determine the adapter; knobs of the
`export` stage only the ONNX model, so trials that differ in them share one trained adapter
(the precision siblings).

Each knob's default is here too, next to its help: what a trial uses when the space neither
searches the knob nor fixes it in `train`. The `train` section (spaces/schema.py), `TrainParams`
(candidates/train.py), the trial's values (search/params.py) and the generated reference
(spaces/reference.py, docs/space-reference.md) all read it from this table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.fields import FieldInfo

# Precisions the onnxruntime-genai model builder writes.
ALL_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")
METHODS = ("lora", "qlora")
SCHEDULES = ("one_cycle", "linear", "cosine", "constant")
# The builder's int4 quantisation algorithms (option `algo_config`, onnxruntime-genai 0.18). The
# `_last` / `_mixed` ones keep the LM head (and for `_mixed` the most sensitive layers) at int8.
INT4_ALGOS = ("default", "rtn", "k_quant", "rtn_last", "k_quant_last", "k_quant_mixed")
# The tokens the loss counts (candidates/recipe.py); a `train` setting, not a knob.
LOSS_SPANS = ("completion_eos", "completion", "whole_text")


class Required:
    """The default of a knob that every space must give in `search`."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = Required()


@dataclass(frozen=True)
class Derived:
    """A default computed from the other knobs' values: `words` says how (the reference shows
    them), `compute` does it."""

    words: str
    compute: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class KnobDef:
    """One searchable knob."""

    type: Any  # the type (with its bounds) every value must have, checked by pydantic
    stage: Literal["train", "export"]
    help: str
    expected: str = ""  # what a valid value is, in words (a Literal's values by default)
    # The value a trial takes when the space leaves the knob out: REQUIRED (it may not), a
    # value, or Derived from the other knobs.
    default: Any = REQUIRED
    # Whether a numeric range `{low, high}` may stand for it (categorical knobs take choices).
    ranged: bool = False
    integer: bool = False  # a range of it suggests integers

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def derived(self) -> bool:
        return isinstance(self.default, Derived)

    def default_for(self, values: Mapping[str, Any]) -> Any:
        """The value of this knob for a trial whose other knobs are `values`."""
        if self.required:
            raise KeyError("a required knob has no default")
        return self.default.compute(values) if self.derived else self.default

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
        "LoRA scale numerator (alpha / r scales B·A)",
        "a positive number",
        default=Derived("2 * lora_r", lambda values: 2 * values["lora_r"]),
        ranged=True,
    ),
    "lora_dropout": KnobDef(
        Annotated[float, Field(ge=0, le=0.9)],
        "train",
        "dropout on the LoRA branch",
        "a number in [0, 0.9]",
        default=0.05,
        ranged=True,
    ),
    "learning_rate": KnobDef(
        Annotated[float, Field(gt=0, le=1)],
        "train",
        "peak learning rate",
        "a number in (0, 1]",
        ranged=True,
    ),
    "method": KnobDef(Literal[METHODS], "train", "lora, or qlora on a 4-bit base", default="lora"),
    "batch_size": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "training batch size",
        "a positive integer",
        default=8,
        ranged=True,
        integer=True,
    ),
    "gradient_checkpointing": KnobDef(
        bool, "train", "recompute activations to save memory", "true or false", default=False
    ),
    "gradient_accumulation_steps": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "micro-batches per optimiser step (an effective batch of batch_size times this)",
        "a positive integer",
        default=1,
        ranged=True,
        integer=True,
    ),
    "max_grad_norm": KnobDef(
        Annotated[float, Field(ge=0)],
        "train",
        "clip the gradient norm to this before each step (Olive's example: 0.3); 0: no clipping",
        "a number >= 0",
        default=0.0,
        ranged=True,
    ),
    "weight_decay": KnobDef(
        Annotated[float, Field(ge=0, le=1)],
        "train",
        "AdamW's decoupled weight decay on the LoRA weights (torch's default)",
        "a number in [0, 1]",
        default=0.01,
        ranged=True,
    ),
    "warmup_ratio": KnobDef(
        Annotated[float, Field(ge=0, lt=1)],
        "train",
        "share of the steps the learning rate rises from zero (not one_cycle: it has its own)",
        "a number in [0, 1)",
        default=0.03,
        ranged=True,
    ),
    "lr_schedule": KnobDef(
        Literal[SCHEDULES],
        "train",
        "the learning-rate schedule (candidates/recipe.py); the default, with the default "
        "warm-up, measured best of six recipes on SmolLM2 (bench/recipes.py, README)",
        default="constant",
    ),
    "adam_beta1": KnobDef(
        Annotated[float, Field(ge=0, lt=1)],
        "train",
        "AdamW's first-moment decay",
        "a number in [0, 1)",
        default=0.9,
        ranged=True,
    ),
    "adam_beta2": KnobDef(
        Annotated[float, Field(ge=0, lt=1)],
        "train",
        "AdamW's second-moment decay",
        "a number in [0, 1)",
        default=0.999,
        ranged=True,
    ),
    "max_steps": KnobDef(
        Annotated[int, Field(ge=1)],
        "train",
        "optimiser steps of the training, instead of `epochs` (Olive's example: 10); null: "
        "`epochs` of the training split",
        "a positive integer",
        default=None,
        ranged=True,
        integer=True,
    ),
    "precision": KnobDef(Literal[ALL_PRECISIONS], "export", "the ONNX model's weight precision"),
    "int4_block_size": KnobDef(
        Literal[16, 32, 64, 128, 256],
        "export",
        "int4 quantisation block size; null: the builder's (32)",
        default=None,
    ),
    "int4_accuracy_level": KnobDef(
        Literal[0, 1, 2, 3, 4],
        "export",
        "int4 MatMul accuracy level (4: int8 activations); null: the builder's",
        default=None,
    ),
    "int4_algo": KnobDef(
        Literal[INT4_ALGOS],
        "export",
        "the builder's int4 algorithm; null: its default",
        default=None,
    ),
    "shared_embeddings": KnobDef(
        bool,
        "export",
        "one matrix for a tied embedding table and LM head (the builder's default for tied "
        "models); false keeps the table unquantised while the head is quantised; null: the "
        "builder decides",
        "true or false",
        default=None,
    ),
    "prune_lm_head": KnobDef(
        bool,
        "export",
        "logits for the last prompt position only during prefill (a shorter time to first "
        "token; label scoring then appends label tokens one at a time); null: the builder decides",
        "true or false",
        default=None,
    ),
}
REQUIRED_KNOBS = tuple(name for name, knob in KNOBS.items() if knob.required)
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


def knob_field(name: str) -> Any:
    """The space-file field that fixes knob `name` instead of searching it (`train.batch_size`):
    the knob's bounds and help, and its default read from the table when a section is made."""
    knob = KNOBS[name]
    bounds = get_args(knob.type)[1:] if get_origin(knob.type) is Annotated else ()
    return FieldInfo.merge_field_infos(
        *bounds, Field(default_factory=lambda: KNOBS[name].default, description=knob.help)
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
