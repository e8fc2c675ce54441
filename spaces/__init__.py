"""Space files shipped with autotune; `tiny.yaml` is the embedded default."""

from pathlib import Path

SPACES_DIR = Path(__file__).resolve().parent
DEFAULT_SPACE = SPACES_DIR / "tiny.yaml"
