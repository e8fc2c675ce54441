"""Which process a worker is: `host:pid:start`, recorded with every trial it runs.

With it, a worker on the same machine can tell a trial whose process is gone (killed, crashed)
from one still running: the check that storages without heartbeats (journal) rely on.
"""

from __future__ import annotations

import functools
import os
import socket


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
