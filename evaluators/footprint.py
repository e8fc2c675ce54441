"""Size on disk of an exported model folder."""

from __future__ import annotations

from pathlib import Path


def folder_size_mb(path: Path) -> float:
    """Total size of the files under `path`, in MiB."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20
