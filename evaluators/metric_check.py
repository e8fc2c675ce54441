"""The space's scoring, tried before any training: a metric that cannot score is exit 2 and one
line at `--dry-run` and before a study's first trial, never a traceback after a training.

Generative spaces need the text metrics' packages (evaluators/text_metrics.py); a custom
`evaluate` module (`data.metric`, a local folder) must load and score references against
themselves, returning numbers, and every figure a space names that autotune does not measure
itself must be one of that module's.
"""

from __future__ import annotations

import numbers

from autotune.evaluators.accuracy import load_metric, metric_location
from autotune.evaluators.text_metrics import check_text_metrics
from autotune.spaces import Space, SpaceError
from autotune.spaces.load import custom_metric_module
from autotune.spaces.metrics import METRICS, split_metric


def check_scoring(space: Space, references: list[str]) -> tuple[str, ...]:
    """The figures the space's custom metric module gives (() without one); raises SpaceError
    naming the field when the scoring cannot work."""
    if space.data.labels:
        return ()
    try:
        check_text_metrics()
    except Exception as error:  # a missing or broken package: one line, the field that needs it
        raise SpaceError(space.source, "data", one_line(error)) from None
    if not custom_metric_module(space):
        return ()
    figures = custom_figures(space, references[:3] or ["a reference"])
    named = [("objectives", n) for n in space.objectives]
    named += [("constraints", n) for n in space.constraints]
    for section, name in named:
        base, _ = split_metric(name)
        if base not in METRICS and base not in figures:
            raise SpaceError(
                space.source,
                f"{section}.{name}",
                f"expected a figure autotune measures or one of the metric module's "
                f"{list(figures)}",
            )
    return figures


def custom_figures(space: Space, references: list[str]) -> tuple[str, ...]:
    """The names of the numbers the custom module returns for references scored against
    themselves."""
    location = metric_location(space.data.metric, space.root)
    field = "data.metric"
    try:
        module = load_metric(str(location))
        figures = module.compute(predictions=references, references=references)
    except Exception as error:  # any failure of user code is bad input here
        raise SpaceError(
            space.source, field, f"the evaluate module {location} fails: {one_line(error)}"
        ) from None
    if not isinstance(figures, dict) or not figures:
        raise SpaceError(
            space.source,
            field,
            f"the evaluate module {location} returned {figures!r}; expected a dict of figures",
        )
    wrong = [k for k, v in figures.items() if not isinstance(v, numbers.Real)]
    if wrong:
        raise SpaceError(
            space.source, field, f"the evaluate module {location} gave non-numbers for {wrong}"
        )
    return tuple(figures)


def one_line(error: BaseException) -> str:
    """An error as `Type: first line of its message`, at most 200 characters."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."
