"""Workers: processes that run trials of one shared study.

Each trial records the worker that runs it (`host:pid:start`), so that a worker on the same
machine can tell a trial whose process is gone (killed, crashed) from one still running: the
check that storages without heartbeats (journal) rely on.

`--workers N` starts N such processes on this machine, each pinned to its own GPU
(CUDA_VISIBLE_DEVICES) or, for the cpu target, to its own share of the CPU cores.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

WORKER = "worker"  # trial user attribute: the worker that ran it
WORKER_INDEX_ENV = "AUTOTUNE_WORKER_INDEX"


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process `pid` (clock ticks since boot); None if it is gone.

    With the pid it names one process even after the pid is reused."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one short read
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counting after the command name


@functools.cache
def this_worker() -> str:
    """This process as a worker: `host:pid:start`."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def is_gone(worker: str) -> bool:
    """Whether `worker` ran on this machine and its process no longer exists.

    A worker on another machine is never reported gone: only heartbeats can tell about it."""
    host, _, rest = worker.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return _start_time(int(pid)) != start


@dataclass(frozen=True)
class Placement:
    """Where local worker `index` of `count` runs: its GPU, or its CPU cores."""

    index: int
    count: int

    def cuda_devices(self, visible: list[str]) -> str:
        return visible[self.index]

    def cpu_cores(self, available: list[int]) -> list[int]:
        """An equal, disjoint share of `available` cores (one each if there are fewer cores)."""
        share = max(1, len(available) // self.count)
        cores = available[self.index * share : (self.index + 1) * share]
        return cores or [available[self.index % len(available)]]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def pin_cpu(cores: list[int]) -> None:
    """Run this process (and the threads it starts) on `cores` only."""
    os.sched_setaffinity(0, cores)
