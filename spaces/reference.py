"""The space file's reference, made from the schema and the knob table: every section's fields
and every knob, with its type, default and help, as Markdown.

docs/space-reference.md is this module's output, and a test checks that it still is; after a
change to spaces/schema.py (or its sections) or spaces/knobs.py, regenerate it with
`python -m autotune.spaces.reference > docs/space-reference.md`.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from autotune.spaces.knobs import KNOBS, TRAIN_KNOBS, Derived, KnobDef
from autotune.spaces.schema import Space

COMMAND = "python -m autotune.spaces.reference > docs/space-reference.md"
# Bounds pydantic keeps in a field's metadata, in words.
BOUNDS = {
    "ge": ">= {}",
    "gt": "> {}",
    "le": "<= {}",
    "lt": "< {}",
    "min_length": "length >= {}",
    "pattern": "matching `{}`",
}
BASIC = {int: "integer", float: "number", bool: "true or false", str: "text", Any: "a value"}


def render() -> str:
    """The whole reference: the top level, each section (nested ones after their parent), the
    knobs."""
    lines = [
        "# Space file reference",
        "",
        f"Generated from spaces/schema.py and spaces/knobs.py by `{COMMAND}`; do not edit by hand.",
        "A section left out of a space file takes the defaults below; so does a field.",
        "",
    ]
    lines += section_lines("Top level", Space, "")
    for path, model in sections(Space, ""):
        lines += section_lines(f"`{path}`", model, path)
    lines += knob_lines()
    return "\n".join(lines).rstrip("\n") + "\n"


def sections(model: type[BaseModel], prefix: str) -> list[tuple[str, type[BaseModel]]]:
    """Every section under `model`, by its dotted path in a space file, parents first."""
    found = []
    for name, field in model.model_fields.items():
        for sub in section_models(field.annotation):
            path = f"{prefix}{name}"
            found += [(path, sub), *sections(sub, f"{path}.")]
    return found


def section_models(annotation: Any) -> list[type[BaseModel]]:
    options = get_args(annotation) if is_union(annotation) else (annotation,)
    return [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]


def section_lines(title: str, model: type[BaseModel], path: str) -> list[str]:
    rows = [
        row(f"`{name}`", type_text(field), default_text(field), help_text(path, name, field))
        for name, field in model.model_fields.items()
        if not field.exclude
    ]
    doc = " ".join(inspect.cleandoc(model.__doc__ or "").split())
    return [
        f"## {title}",
        "",
        doc,
        "",
        row("field", "type", "default", "help"),
        "|---" * 4 + "|",
    ] + [
        *rows,
        "",
    ]


def knob_lines() -> list[str]:
    header = row("knob", "stage", "values", "in `search`", "default", "help")
    lines = [
        "## Knobs (`search`)",
        "",
        "Each knob in `search` is a fixed value, `{choices: [...]}` or, where it says so, a range",
        "`{low, high, log, step}`. A knob the space leaves out takes its default (a training",
        "setting: the `train` section's).",
        "",
        header,
        "|---" * 6 + "|",
    ]
    for name, knob in KNOBS.items():
        form = "value, choices or range" if knob.ranged else "value or choices"
        help_ = knob.help + (f"; or fixed as `train.{name}`" if name in TRAIN_KNOBS else "")
        lines.append(
            row(f"`{name}`", knob.stage, knob.describe_expected(), form, knob_default(knob), help_)
        )
    return [*lines, ""]


def knob_default(knob: KnobDef) -> str:
    if knob.required:
        return "required"
    if isinstance(knob.default, Derived):
        return f"`{knob.default.words}`"
    return f"`{value_text(knob.default)}`"


def help_text(path: str, name: str, field: FieldInfo) -> str:
    text = field.description or ""
    if path == "train" and name in TRAIN_KNOBS:
        text += f"; or searched as `search.{name}`"
    return text


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "its defaults"
    return f"`{value_text(value)}`"


def value_text(value: Any) -> str:
    """A value as a space file writes it (YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def type_text(field: FieldInfo) -> str:
    bounds = [
        template.format(getattr(item, attr))
        for item in field.metadata
        for attr, template in BOUNDS.items()
        if getattr(item, attr, None) is not None
    ]
    return ", ".join([annotation_text(field.annotation), *bounds])


def annotation_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " or ".join(f"`{value_text(a)}`" for a in args)
    if is_union(annotation):
        return " or ".join(annotation_text(a) for a in args)
    if origin is list:
        return f"list of {annotation_text(args[0])}"
    if origin is dict:
        return f"mapping of name to {annotation_text(args[1])}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a section (below)"
    return BASIC.get(annotation, getattr(annotation, "__name__", str(annotation)))


def is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


if __name__ == "__main__":
    sys.stdout.write(render())
