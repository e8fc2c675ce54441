"""Stage outputs stored by the hash of their inputs, written atomically.

A stage (base, rung, adapter, merged, onnx) asks `get_or_build(stage, key, build)`: when
`<root>/<stage>/<key>/` exists with its manifest it is reused; otherwise `build` writes into a
temporary folder that is renamed into place only once complete, so a crash never leaves a half
entry that a later trial would trust.

`list_entries(root)` and `remove_entry(entry)` inspect and prune a cache (`autotune cache`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
        """The entry's folder, built by `build(tmp_folder)` first when it is not cached.

        Processes sharing the cache build an entry once: a second one waits for the first's
        build (a lock per entry) and then finds it complete."""
        final = self.path(stage, key)
        if self.has(stage, key):
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / LOCKS / f"{stage}-{key}"):
            if self.has(stage, key):  # built by another process while this one waited
                return final
            self._build(stage, key, build)
        return final

    def _build(self, stage: str, key: str, build: Callable[[Path], Any]) -> None:
        final = self.path(stage, key)
        tmp = final.parent / f"{TMP_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            start, cpu_start = time.perf_counter(), time.process_time()
            build(tmp)
            manifest = {
                "stage": stage,
                "key": key,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu_start,  # all threads of this process
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
            if final.exists():  # an incomplete entry (no manifest) left by a crash
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on the file `path` (made if missing), held inside the `with` block;
    waits for the holder, and the OS releases it if the holder dies."""
    path.parent.mkdir(exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------- inspecting the cache

# Stages the study writes; a cache may hold others (the command accepts those it finds).
STAGES = ("base", "rung", "adapter", "merged", "onnx", "measure")
TMP_PREFIX = ".tmp-"
LOCKS = ".locks"  # one empty file per entry ever built, locked while it is built
# Incomplete or temporary folders younger than this may belong to a build still running.
LEFTOVER_GRACE_S = 3600.0


@dataclass(frozen=True)
class CacheEntry:
    """One folder under `<root>/<stage>/`: a complete entry, or a leftover of a build."""

    stage: str
    key: str
    path: Path
    state: str  # "complete", "incomplete" (no manifest) or "temporary" (a build folder)
    size_bytes: int
    modified: float  # newest mtime of the folder or anything in it (epoch seconds)
    seconds: float | None  # build time from the manifest

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    def age(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.modified)


def list_entries(root: Path) -> list[CacheEntry]:
    """Every entry of the cache at `root`, sorted by stage, then newest first."""
    entries = []
    for stage_dir in stage_folders(root):
        for folder in _subfolders(stage_dir):
            try:
                entries.append(read_entry(stage_dir.name, folder))
            except FileNotFoundError:  # renamed or removed meanwhile by a build or a prune
                continue
    return sorted(entries, key=lambda e: (e.stage, -e.modified))


def stage_folders(root: Path) -> list[Path]:
    """The stage folders of a cache: known stage names, and other folders holding built entries.

    Anything else (say, the trials of a run folder passed by mistake) is never an entry.
    """
    return [p for p in _subfolders(Path(root)) if p.name in STAGES or _holds_entries(p)]


def read_entry(stage: str, folder: Path) -> CacheEntry:
    """The state, size, age and build time of one entry folder."""
    size, modified = _scan(folder)
    key, state = folder.name, "complete"
    if key.startswith(TMP_PREFIX):
        key, state = key[len(TMP_PREFIX) :].rpartition("-")[0] or key, "temporary"
    elif not (folder / MANIFEST).is_file():
        state = "incomplete"
    seconds = _manifest_seconds(folder) if state == "complete" else None
    return CacheEntry(stage, key, folder, state, size, modified, seconds)


def remove_entry(entry: CacheEntry) -> int:
    """Delete an entry's folder; the bytes freed.

    The manifest goes first, so an interrupted removal leaves an incomplete entry that
    `get_or_build` rebuilds rather than a partial one it would trust.
    """
    if not entry.path.is_dir():  # already gone
        return 0
    (entry.path / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(entry.path)
    return entry.size_bytes


def _subfolders(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())


def _holds_entries(folder: Path) -> bool:
    return any(
        p.name.startswith(TMP_PREFIX) or (p / MANIFEST).is_file() for p in _subfolders(folder)
    )


def _scan(folder: Path) -> tuple[int, float]:
    """Total bytes of the regular files under `folder` and the newest mtime, links not followed."""
    size, modified = 0, folder.lstat().st_mtime
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            info = os.lstat(os.path.join(parent, name))
            modified = max(modified, info.st_mtime)
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
    return size, modified


def _manifest_seconds(folder: Path) -> float | None:
    try:
        seconds = json.loads((folder / MANIFEST).read_text()).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, int | float) else None
