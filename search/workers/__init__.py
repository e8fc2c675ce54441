"""Worker plumbing: where a shared study lives (storage), which process a worker is (identity),
where local workers run (placement) and how the trials of dead workers run again (recovery)."""

from autotune.search.workers.identity import is_gone, this_worker
from autotune.search.workers.location import STUDY_DB, Where, run_folder_study, shared_study
from autotune.search.workers.placement import Placement, pin_cpu, visible_gpus
from autotune.search.workers.recovery import RunFolderBusy, RunLock
from autotune.search.workers.storage import (
    DEFAULT_HEARTBEAT_S,
    MISSED_HEARTBEATS,
    StorageError,
    StorageSpec,
    open_storage,
    parse_storage,
)

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "MISSED_HEARTBEATS",
    "STUDY_DB",
    "Placement",
    "RunFolderBusy",
    "RunLock",
    "StorageError",
    "StorageSpec",
    "Where",
    "is_gone",
    "open_storage",
    "parse_storage",
    "pin_cpu",
    "run_folder_study",
    "shared_study",
    "this_worker",
    "visible_gpus",
]
