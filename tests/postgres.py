"""A throwaway PostgreSQL server on loopback for the tests of shared studies.

`AUTOTUNE_TEST_POSTGRES=postgresql://...` names a server to use instead. Otherwise the server is
made with the machine's PostgreSQL programs (Debian's postgresql package: `initdb` and `pg_ctl`)
in a temporary folder, run as the `postgres` user when the tests run as root (PostgreSQL refuses
root), and stopped at the end. Without those programs the tests that need it are skipped, saying
why, except where AUTOTUNE_REQUIRE_POSTGRES=1 (set by .ci/run): there they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _program(name: str) -> str | None:
    """A PostgreSQL server program on PATH or in Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _unavailable(reason: str) -> None:
    if os.environ.get("AUTOTUNE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (AUTOTUNE_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"no PostgreSQL server for this test: {reason}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server with an empty database, for as long as the block runs."""
    given = os.environ.get("AUTOTUNE_TEST_POSTGRES")
    if given:
        yield given
        return
    initdb, pg_ctl = _program("initdb"), _program("pg_ctl")
    if not (initdb and pg_ctl):
        _unavailable("initdb and pg_ctl not found (install Debian's postgresql package)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="autotune-pg-"))
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            _unavailable("running as root, and no runuser to start the server as 'postgres'")
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()
    log = folder / "server.log"

    def run(*command: str) -> None:
        result = subprocess.run([*as_user, *command], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr or result.stdout}")

    try:
        run(initdb, "-D", str(data), "-U", "autotune", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
        try:
            yield f"postgresql://autotune@127.0.0.1:{port}/postgres"
        finally:
            run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
