"""Where a study lives: a storage URL turned into an Optuna storage.

    (no --storage)                 sqlite:///<out>/study.db, one process per run folder
    sqlite:///PATH, postgresql://USER@HOST/DB, mysql://...
                                   an Optuna RDBStorage with heartbeats: a worker that dies leaves
                                   a RUNNING trial that another worker fails and queues again once
                                   no heartbeat came for the grace period
    journal:PATH                   an Optuna JournalStorage on a file (JournalFileBackend): several
                                   processes on one machine, no server, no SQLite lock errors

Journal storage has no heartbeats; a worker finds a dead worker's trials there by checking that
the process recorded with the trial is gone (search/workers/identity.py), which works for
processes on the same machine, the case journal storage is for.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.errors import UsageError

if TYPE_CHECKING:
    import optuna

RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
JOURNAL = "journal:"
# Seconds between a worker's heartbeats, and how many of them may be missed before its trial
# counts as stale.
DEFAULT_HEARTBEAT_S = 30
MISSED_HEARTBEATS = 4
OPEN_ATTEMPTS = 3


class StorageError(UsageError):
    """A storage URL that cannot be used (bad form, missing driver, unreachable server)."""


@dataclass(frozen=True)
class StorageSpec:
    """A storage URL, checked, with what it means for workers."""

    url: str

    @property
    def kind(self) -> str:
        """'journal', or the database scheme (sqlite, postgresql, mysql)."""
        if self.url.startswith(JOURNAL):
            return "journal"
        return re.split(r"[+:]", self.url, maxsplit=1)[0]

    @property
    def heartbeats(self) -> bool:
        """Whether stale trials are found by heartbeats (RDB) rather than by process checks."""
        return self.kind in RDB_SCHEMES

    @property
    def journal_path(self) -> Path:
        """The journal file of a `journal:PATH` storage, with `~` expanded (parsed here once)."""
        return Path(self.url[len(JOURNAL) :]).expanduser()

    def shown(self) -> str:
        """The URL without its password, for messages."""
        return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", self.url)


def parse_storage(url: str) -> StorageSpec:
    """A StorageSpec; StorageError naming what was expected."""
    spec = StorageSpec(url)
    if spec.kind == "journal":
        if not url[len(JOURNAL) :]:
            raise StorageError("--storage journal:PATH needs a file path after 'journal:'")
    elif spec.kind not in RDB_SCHEMES or "://" not in url:
        raise StorageError(
            f"--storage {spec.shown()!r}: expected sqlite:///PATH, postgresql://USER@HOST/DB, "
            "mysql://USER@HOST/DB or journal:PATH"
        )
    return spec


def open_storage(
    spec: StorageSpec,
    heartbeat_s: int = DEFAULT_HEARTBEAT_S,
    on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.storages.BaseStorage:
    """The Optuna storage for `spec`; RDB storages beat every `heartbeat_s` seconds and call
    `on_stale` for each trial another worker left stale."""
    import optuna

    if spec.kind == "journal":
        path = spec.journal_path
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                spec.url,
                heartbeat_interval=heartbeat_s,
                grace_period=MISSED_HEARTBEATS * heartbeat_s,
                heartbeat_stale_trial_callback=on_stale,
            )
        except ImportError:
            raise StorageError(
                f"--storage {spec.shown()}: the database driver is not installed: postgresql:// "
                "needs psycopg (installed with autotune), mysql:// needs pymysql"
            ) from None
        except Exception as error:  # sqlalchemy's errors carry the server's reason
            # Workers starting together on an empty database race to create Optuna's tables:
            # the loser fails once, then finds them.
            if attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(1.0 + random.random())
                continue
            text = str(error).strip()
            reason = text.splitlines()[0] if text else type(error).__name__
            raise StorageError(
                f"--storage {spec.shown()}: cannot open the storage: {reason}"
            ) from None
    raise AssertionError("unreachable")
