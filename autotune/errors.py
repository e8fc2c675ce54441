"""The one error base: input autotune cannot use, reported in one line with an exit code.

Every module raises a subclass of `AutotuneError` for bad input (a space file, a data file, a
model folder, a flag, a storage URL, a run folder); the command line catches it once
(`autotune.cli.main`), prints `autotune[ COMMAND]: error: MESSAGE` and exits with `exit_code`,
without a traceback. Anything else is a bug or a failed trial, never bad input.
"""

from __future__ import annotations


class AutotuneError(Exception):
    """Bad input, said in one line; `exit_code` is what the command exits with."""

    exit_code = 2


class UsageError(AutotuneError):
    """Bad input that is not in a space file: a flag, a run folder, a model folder, a storage."""
