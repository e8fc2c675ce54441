"""Stage outputs stored by the hash of their inputs, written atomically.

A stage (base, adapter, merged, onnx) asks `get_or_build(stage, key, build)`: when
`<root>/<stage>/<key>/` exists with its manifest it is reused; otherwise `build` writes into a
temporary folder that is renamed into place only once complete, so a crash never leaves a half
entry that a later trial would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = "autotune_manifest.json"


def digest(parts: Any) -> str:
    """A short stable hash of JSON-serialisable inputs."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def folder_digest(path: Path) -> str:
    """A hash of every file's name and content under `path` (the identity of a local model)."""
    hasher = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        hasher.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
    return hasher.hexdigest()[:20]


class StageCache:
    """Folders of stage outputs under `root`, one per (stage, key)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def has(self, stage: str, key: str) -> bool:
        return (self.path(stage, key) / MANIFEST).is_file()

    def get_or_build(self, stage: str, key: str, build: Callable[[Path], Any]) -> Path:
        """The entry's folder, built by `build(tmp_folder)` first when it is not cached."""
        final = self.path(stage, key)
        if self.has(stage, key):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            start = time.perf_counter()
            build(tmp)
            manifest = {"stage": stage, "key": key, "seconds": time.perf_counter() - start}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            if final.exists():  # an incomplete entry (no manifest) left by a crash
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final
