"""The space file: what to search, how to measure it, and what counts as good.

`load_space(path, target)` reads a YAML file with `yaml.safe_load`, validates it into a `Space`
and checks what depends on the target (precisions) and on the disk (data files, model folder).
Every problem is raised as one `SpaceError` naming the file, the field and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TARGETS = ("cpu", "cuda")

# Precisions the onnxruntime-genai model builder writes and the target can load.
# bf16 builds for cpu but fails to load there; fp16 builds and runs on cpu (slowly).
PRECISIONS_BY_TARGET: dict[str, tuple[str, ...]] = {
    "cpu": ("fp32", "fp16", "int8", "int4"),
    "cuda": ("fp32", "fp16", "bf16", "int8", "int4"),
}
ALL_PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int4")

# Training methods: LoRA on the base in its training dtype, or QLoRA (LoRA on a bitsandbytes
# 4-bit base). Compute dtypes of training, by target: fp16 training (autocast with a gradient
# scaler) is for CUDA GPUs; bf16 and fp32 train on either.
METHODS = ("lora", "qlora")
TRAIN_DTYPES_BY_TARGET: dict[str, tuple[str, ...]] = {
    "cpu": ("auto", "fp32", "bf16"),
    "cuda": ("auto", "fp32", "bf16", "fp16"),
}
# The builder's int4 quantisation algorithms (option `algo_config`, onnxruntime-genai 0.18). The
# `_last` / `_mixed` ones keep the LM head (and for `_mixed` the most sensitive layers) at int8.
INT4_ALGOS = ("default", "rtn", "k_quant", "rtn_last", "k_quant_last", "k_quant_mixed")

# Metrics a space may use as objectives or constraints. Latency metrics take a statistic
# suffix (`decode_ms.p90`); without one the space's `latency.stat` applies. `train_peak_mem_mb`
# and `train_s` are what training the trial's adapter took (peak GPU memory on a GPU, peak
# resident memory on a CPU; seconds).
LATENCY_METRICS = ("ttft_ms", "decode_ms", "e2e_ms", "tokens_per_s")
OTHER_METRICS = (
    "accuracy",
    "macro_f1",
    "size_mb",
    "peak_mem_mb",
    "model_mem_mb",
    "gpu_mem_mb",
    "train_peak_mem_mb",
    "train_s",
)
STATS = ("p50", "p90", "p99", "mean")
# Metric name -> the targets it exists on.
TARGET_ONLY_METRICS = {"gpu_mem_mb": ("cuda",)}


class SpaceError(Exception):
    """A space file that cannot be used: which file, which field, what was expected."""

    def __init__(self, file: Path | str, field: str, message: str):
        self.file, self.field, self.message = str(file), field, message
        super().__init__(f"{self.file}: {field}: {message}" if field else f"{self.file}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- search knobs


class Choices(_Strict):
    """A categorical knob: `{choices: [8, 16, 32]}`."""

    choices: list[bool | int | float | str] = Field(min_length=1)


class Range(_Strict):
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


class KnobSpec(BaseModel):
    """What values one knob accepts."""

    kind: Literal["int", "float", "str", "bool"]
    expected: str
    allowed: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any) -> bool:
        if self.kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            return False
        if self.kind == "float" and not (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            return False
        if self.kind == "str" and not isinstance(value, str):
            return False
        if self.kind == "bool" and not isinstance(value, bool):
            return False
        if self.allowed is not None and value not in self.allowed:
            return False
        if self.minimum is not None and value < self.minimum:
            return False
        return not (self.maximum is not None and value > self.maximum)


KNOBS: dict[str, KnobSpec] = {
    "lora_r": KnobSpec(kind="int", minimum=1, expected="a positive integer"),
    "lora_alpha": KnobSpec(kind="float", minimum=1e-9, expected="a positive number"),
    "lora_dropout": KnobSpec(kind="float", minimum=0, maximum=0.9, expected="a number in [0, 0.9]"),
    "learning_rate": KnobSpec(
        kind="float", minimum=1e-9, maximum=1.0, expected="a number in (0, 1]"
    ),
    "precision": KnobSpec(kind="str", allowed=ALL_PRECISIONS, expected=f"one of {ALL_PRECISIONS}"),
    "int4_block_size": KnobSpec(
        kind="int", allowed=(16, 32, 64, 128, 256), expected="one of 16, 32, 64, 128, 256"
    ),
    "int4_accuracy_level": KnobSpec(
        kind="int", allowed=(0, 1, 2, 3, 4), expected="one of 0, 1, 2, 3, 4"
    ),
    "int4_algo": KnobSpec(kind="str", allowed=INT4_ALGOS, expected=f"one of {INT4_ALGOS}"),
    "method": KnobSpec(kind="str", allowed=METHODS, expected=f"one of {METHODS}"),
    "batch_size": KnobSpec(kind="int", minimum=1, expected="a positive integer"),
    "gradient_checkpointing": KnobSpec(kind="bool", expected="true or false"),
}
REQUIRED_KNOBS = ("lora_r", "learning_rate", "precision")
# Knobs that change only the export: trials differing in them share the trained adapter.
EXPORT_KNOBS = ("precision", "int4_block_size", "int4_accuracy_level", "int4_algo")
# Training settings that may be fixed in `train` or searched in `search` (one or the other).
TRAIN_KNOBS = ("method", "batch_size", "gradient_checkpointing")
SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")


# --------------------------------------------------------------------------- sections


class TinyModel(_Strict):
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


class ModelSection(_Strict):
    """The base model: a hub id or local folder (`path`), or the embedded `tiny` base."""

    path: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    tiny: TinyModel | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelSection:
        if (self.path is None) == (self.tiny is None):
            raise ValueError("expected exactly one of `path` (hub id or folder) or `tiny`")
        return self


class DataSection(_Strict):
    """Where the examples are and how a record becomes a prompt and a completion."""

    files: list[str] = Field(min_length=1)
    prompt_template: str
    completion_template: str
    labels: list[str] | None = Field(None, min_length=2)
    eval_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0
    # Spaces without labels: the `evaluate` metric scoring greedy generations, by the name of one
    # shipped with autotune or a local module folder (relative to the space file).
    metric: str = "exact_match"

    @field_validator("files", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class TrainSection(_Strict):
    """Fixed training settings (the searched ones live in `search`).

    `method`, `batch_size` and `gradient_checkpointing` may instead be searched as knobs.
    `dtype` is the compute dtype: LoRA keeps the base in it (bf16/fp16 under autocast, fp16 with a
    gradient scaler) and QLoRA computes in it (`bnb_4bit_compute_dtype`); `auto` is bf16 on a GPU
    that supports it, else fp32. The merged model is saved in the same dtype.
    """

    method: Literal["lora", "qlora"] = "lora"
    target_modules: list[str] = Field(default_factory=lambda: ["qkv_proj", "o_proj"], min_length=1)
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


class LatencySection(_Strict):
    """How generation latency is measured on the exported model."""

    prompt_tokens: int = Field(64, ge=1)
    new_tokens: int = Field(8, ge=2)
    warmup: int = Field(2, ge=0)
    repeats: int = Field(10, ge=3)
    # Repeat (at least `repeats`, at most `max_repeats`) until the 95% confidence intervals of the
    # ttft and decode medians are within this fraction of them; None: exactly `repeats`.
    stable: float | None = Field(None, gt=0, lt=1)
    max_repeats: int = Field(300, ge=3)
    stat: Literal["p50", "p90", "p99", "mean"] = "p50"
    threads: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _repeat_bounds(self) -> LatencySection:
        if self.max_repeats < self.repeats:
            raise ValueError("expected max_repeats >= repeats")
        return self


class StrategySection(_Strict):
    """How the study spends its budget: sampler, precision siblings, early stopping, failures."""

    sampler: Literal["tpe", "nsga2", "gp", "random", "grid"] = "tpe"
    # Export knobs whose other values are queued as sibling trials each time a new adapter is
    # trained (they reuse it); None: every export knob the space searches; []: no siblings.
    expand: list[str] | None = None
    # Stop a training whose eval loss at a checkpoint (from `prune_from` on) is worse than the
    # median of earlier trainings at that checkpoint, once `prune_after` trainings completed.
    prune: bool = True
    checkpoints: int = Field(3, ge=1, le=20)
    prune_from: int = Field(2, ge=1)
    prune_after: int = Field(3, ge=1)
    # Stop the study after this many failed trials in a row, or this many pruned trials in a row
    # (a sampler that keeps proposing what the pruning rule stops).
    max_failures: int = Field(5, ge=1)
    max_pruned: int = Field(20, ge=1)

    @field_validator("expand")
    @classmethod
    def _export_knobs(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in EXPORT_KNOBS:
                raise ValueError(f"expected export knobs among {EXPORT_KNOBS}, got {name!r}")
        return value


class BudgetSection(_Strict):
    """When the study stops: a number of completed trials and/or a wall-clock limit."""

    trials: int = Field(20, ge=1)
    timeout: float | None = None

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class SelectSection(_Strict):
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


class Space(_Strict):
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


# --------------------------------------------------------------------------- parsing helpers

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_CONSTRAINT = re.compile(r"^\s*(>=|<=)\s*(-?\d+(?:\.\d*)?(?:[eE]-?\d+)?)\s*$")


def parse_duration(text: str) -> float:
    """'90s', '30m', '8h', '1d' or plain seconds -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like '30m', '8h' or '90s', got {text!r}")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def parse_constraint(metric: str, text: str) -> Constraint:
    match = _CONSTRAINT.match(str(text))
    if not match:
        raise ValueError(f"expected '>= NUMBER' or '<= NUMBER', got {text!r}")
    return Constraint(metric=metric, op=match.group(1), bound=float(match.group(2)))


def split_metric(name: str) -> tuple[str, str | None]:
    """'decode_ms.p90' -> ('decode_ms', 'p90'); 'accuracy' -> ('accuracy', None)."""
    base, _, stat = name.partition(".")
    return base, (stat or None)


def metric_column(name: str, default_stat: str) -> str:
    """The trials-table column of a metric: 'e2e_ms' -> 'e2e_ms.p50' when the stat is p50."""
    base, stat = split_metric(name)
    return f"{base}.{stat or default_stat}" if base in LATENCY_METRICS else base


def metric(metrics: dict[str, float], name: str, space: Space) -> float:
    """A metric by the name the space uses; latency metrics default to `latency.stat`."""
    return metrics[metric_column(name, space.latency.stat)]


def is_metric_column(column: str) -> bool:
    """True for a trials-table column that holds a metric (`accuracy`, `decode_ms.p90`, ...)."""
    base, stat = split_metric(column)
    return (base in OTHER_METRICS and stat is None) or (
        base in LATENCY_METRICS and stat is not None
    )


def check_metric(name: str) -> str | None:
    """None when `name` is a metric a space may use, else what was expected."""
    base, stat = split_metric(name)
    if base in OTHER_METRICS and stat is None:
        return None
    if base in LATENCY_METRICS and (stat is None or stat in STATS):
        return None
    return (
        f"expected a metric: one of {OTHER_METRICS + LATENCY_METRICS}, latency metrics "
        f"optionally with a statistic suffix {STATS} (e.g. 'decode_ms.p90'), got {name!r}"
    )


# --------------------------------------------------------------------------- loading


def load_space(path: str | Path, target: str) -> Space:
    """Read, validate and check a space file for a target; raise SpaceError on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError(path, "", "no such file; expected a YAML space file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", error)
        raise SpaceError(path, "", f"not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise SpaceError(path, "", "expected a mapping of sections (name, model, data, ...)")
    try:
        space = Space.model_validate(raw)
    except ValidationError as error:
        raise _first_error(path, error) from None
    space.source = path.resolve()
    _check_search(space, path, target)
    _check_metrics(space, path, target)
    _check_files(space, path)
    return space


def stored_space(raw: dict[str, Any], source: str = "study") -> Space:
    """A space as a study stores it (`Space.model_dump(mode="json")`), validated again.

    Only the schema is checked: the data files and model folder may live on another machine.
    """
    try:
        space = Space.model_validate(raw)
    except ValidationError as error:
        raise _first_error(Path(source), error) from None
    for name, knob in space.search.items():
        space.search[name] = parse_knob(Path(source), name, knob)
    return space


def _first_error(path: Path, error: ValidationError, prefix: list[str] | None = None) -> SpaceError:
    detail = error.errors()[0]
    loc = [str(part) for part in detail["loc"]]
    if prefix:
        field = ".".join(prefix + loc)
        return SpaceError(path, field, detail["msg"].removeprefix("Value error, "))
    field = ".".join(loc)
    if detail["type"] == "extra_forbidden":
        parent = _section_model(loc[:-1])
        allowed = ", ".join(parent.model_fields) if parent else ""
        return SpaceError(path, field, f"unknown key; expected one of: {allowed}")
    if detail["type"] == "missing":
        return SpaceError(path, field, "required, but missing")
    message = detail["msg"].removeprefix("Value error, ")
    got = detail.get("input")
    if detail["type"] != "value_error" and not isinstance(got, dict):
        message += f", got {got!r}"
    return SpaceError(path, field, message)


def _section_model(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] = Space
    for part in loc:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if a]
        models = [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]
        if not models:
            return None
        model = models[0]
    return model


def parse_knob(path: Path, name: str, raw: Any) -> Knob:
    """A fixed value, `{choices: [...]}` or `{low, high, log, step}`."""
    field = f"search.{name}"
    if isinstance(raw, bool | int | float | str):
        return raw
    kind: type[BaseModel] | None = None
    if isinstance(raw, dict):
        kind = Choices if "choices" in raw else Range if ("low" in raw or "high" in raw) else None
    if kind is None:
        raise SpaceError(
            path,
            field,
            f"expected a fixed value, {{choices: [...]}} or {{low, high, log}}, got {raw!r}",
        )
    try:
        return kind.model_validate(raw)
    except ValidationError as error:
        raise _first_error(path, error, prefix=[field]) from None


def _check_search(space: Space, path: Path, target: str) -> None:
    for name, raw in space.search.items():
        field = f"search.{name}"
        if name not in KNOBS:
            raise SpaceError(path, field, f"unknown knob; expected one of: {', '.join(KNOBS)}")
        knob = space.search[name] = parse_knob(path, name, raw)
        spec = KNOBS[name]
        if isinstance(knob, Range):
            if spec.kind in ("str", "bool") or spec.allowed is not None:
                raise SpaceError(path, field, f"expected {{choices: [...]}} of {spec.expected}")
            values: list[Any] = [knob.low, knob.high]
            if spec.kind == "int":
                values = [int(v) if float(v).is_integer() else v for v in values]
        else:
            values = knob.choices if isinstance(knob, Choices) else [knob]
        for value in values:
            if not spec.check(value):
                raise SpaceError(path, field, f"expected {spec.expected}, got {value!r}")
    for name in REQUIRED_KNOBS:
        if name not in space.search:
            raise SpaceError(path, f"search.{name}", "required, but missing")
    for name in TRAIN_KNOBS:
        if name in space.search and name in space.train.model_fields_set:
            raise SpaceError(
                path, f"search.{name}", f"also fixed as train.{name}; expected it in one place"
            )
    if target not in TARGETS:
        raise SpaceError(path, "", f"target must be one of {TARGETS}, got {target!r}")
    valid = PRECISIONS_BY_TARGET[target]
    for precision in knob_values(space.search["precision"]):
        if precision not in valid:
            raise SpaceError(
                path,
                "search.precision",
                f"{precision!r} cannot run on target {target!r}; expected one of {valid}",
            )
    dtypes = TRAIN_DTYPES_BY_TARGET[target]
    if space.train.dtype not in dtypes:
        raise SpaceError(
            path,
            "train.dtype",
            f"{space.train.dtype!r} training needs a CUDA GPU (target cuda); expected one of "
            f"{dtypes} for target {target!r}",
        )


def _check_metrics(space: Space, path: Path, target: str) -> None:
    named = [("objectives", n) for n in space.objectives]
    named += [("constraints", n) for n in space.constraints]
    for section, name in named:
        if problem := check_metric(name):
            raise SpaceError(path, f"{section}.{name}", problem)
        targets = TARGET_ONLY_METRICS.get(split_metric(name)[0], TARGETS)
        if target not in targets:
            raise SpaceError(
                path, f"{section}.{name}", f"is measured only on target {targets}, not {target!r}"
            )
    for name, text in space.constraints.items():
        try:
            parse_constraint(name, text)
        except ValueError as error:
            raise SpaceError(path, f"constraints.{name}", str(error)) from None
    prefer = space.select.prefer
    if prefer is not None and prefer not in space.objectives:
        raise SpaceError(
            path, "select.prefer", f"expected one of the objectives {list(space.objectives)}"
        )
    if space.data.labels is None and any(
        split_metric(m)[0] == "macro_f1" for m in space.objectives
    ):
        raise SpaceError(path, "objectives.macro_f1", "needs data.labels (a classification space)")


def _check_files(space: Space, path: Path) -> None:
    for i, file in enumerate(space.data_paths()):
        if not file.is_file():
            raise SpaceError(
                path, f"data.files.{i}", f"expected an existing data file, {file} is missing"
            )
    from autotune.evaluators.accuracy import metric_location

    if not space.data.labels and not metric_location(space.data.metric, space.root).is_dir():
        raise SpaceError(
            path,
            "data.metric",
            "expected the name of a metric shipped with autotune (classification, exact_match) "
            f"or an `evaluate` module folder, got {space.data.metric!r}",
        )
    if space.model.path is not None and model_source(space) == "missing":
        raise SpaceError(
            path, "model.path", f"expected an existing model folder, {space.model.path} is missing"
        )


def knob_values(knob: Knob) -> list[Any]:
    """The values a categorical or fixed knob can take (a range gives its bounds)."""
    if isinstance(knob, Choices):
        return list(knob.choices)
    if isinstance(knob, Range):
        return [knob.low, knob.high]
    return [knob]


def model_source(space: Space) -> Literal["tiny", "local", "hub", "missing"]:
    """Where the base model comes from: the embedded tiny base, a local folder or the hub."""
    if space.model.tiny is not None:
        return "tiny"
    text = space.model.path or ""
    looks_local = text.startswith(("/", "./", "../", "~")) or text.count("/") > 1
    candidate = (space.root / Path(text).expanduser()).resolve()
    if candidate.is_dir():
        return "local"
    return "missing" if looks_local else "hub"


def model_path(space: Space) -> str:
    """The base model's local folder (resolved) or its hub id."""
    if model_source(space) == "local":
        return str((space.root / Path(space.model.path or "").expanduser()).resolve())
    return space.model.path or ""
