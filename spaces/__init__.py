"""The space schema and the space files shipped with autotune; `tiny.yaml` is the embedded
default.

The public surface is re-exported here: `load_space`, `Space` and its sections, `SpaceError`,
the knob table (spaces/knobs.py) and the metric vocabulary (spaces/metrics.py).
"""

from pathlib import Path

from autotune.spaces.knobs import (
    KNOBS,
    REQUIRED,
    Choices,
    Derived,
    Knob,
    KnobDef,
    Range,
    knob_values,
)
from autotune.spaces.latency import LatencySection, NoiseSection
from autotune.spaces.load import gguf_path, load_space, model_path, model_source, stored_space
from autotune.spaces.metrics import (
    LATENCY_METRICS,
    METRICS,
    STATS,
    check_metric,
    fmt,
    interval_of,
    is_metric_column,
    metric_column,
    split_metric,
)
from autotune.spaces.schema import (
    Constraint,
    Space,
    SpaceError,
    TinyModel,
    parse_constraint,
    parse_duration,
)
from autotune.spaces.strategy import StrategySection

SPACES_DIR = Path(__file__).resolve().parent
DEFAULT_SPACE = SPACES_DIR / "tiny.yaml"

__all__ = [
    "DEFAULT_SPACE",
    "KNOBS",
    "REQUIRED",
    "Derived",
    "KnobDef",
    "LATENCY_METRICS",
    "METRICS",
    "STATS",
    "check_metric",
    "fmt",
    "interval_of",
    "is_metric_column",
    "metric_column",
    "split_metric",
    "SPACES_DIR",
    "Choices",
    "Constraint",
    "Knob",
    "LatencySection",
    "NoiseSection",
    "Range",
    "Space",
    "SpaceError",
    "StrategySection",
    "TinyModel",
    "knob_values",
    "load_space",
    "gguf_path",
    "model_path",
    "model_source",
    "parse_constraint",
    "parse_duration",
    "stored_space",
]
