"""The study command's options, typed: read from the command line once (commands/study.py), and
all that the dry run and the launch (commands/run.py) see of it. --trials, --sampler and
--max-failures are not here: they are already written into the space."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StudyOptions:
    target: str  # "cpu" or "cuda"
    out: Path  # the run folder as given (default runs/<space name>)
    cache: Path | None  # the stage cache; None: <run folder>/cache
    seed: int  # the sampler's seed
    storage: str | None  # a storage URL the workers share; None: <run folder>/study.db
    study: str | None  # the study's name; None: the space's name
    workers: int  # worker processes to start on this machine
    worker_slot: str | None  # "K/N" for worker K of the N that --workers N started
    heartbeat: int  # seconds between a worker's heartbeats (database storages)
    resume: bool  # the study must exist already
    quiet: bool  # only failures and the result on the terminal
    json: bool  # a JSON summary is all stdout gets
    argv: tuple[str, ...]  # the command line, which the workers of --workers N repeat

    @property
    def folder(self) -> Path:
        """The run folder, absolute: what messages name and every process of the run shares."""
        return self.out.resolve()

    def cache_in(self, folder: Path) -> Path:
        """The stage cache for the run folder `folder`."""
        return self.cache or folder / "cache"
