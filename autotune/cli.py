"""The `autotune` command: dispatch to a sub-command, and turn bad input into one line.

    autotune --space spaces/tiny.yaml --target cpu [...]     the study (autotune/commands/study.py)
    autotune bench | cache | report | compare | select ...   the other commands (each --help)

Exit codes: 0 done; 1 the study ran but no trial completed, or it stopped on --max-failures (or,
for `select`, no candidate meets the constraints); 2 bad input (space file, data, model folder,
flags, run folder, storage), reported in one line without a traceback.
"""

from __future__ import annotations

import importlib
import sys

from autotune.errors import AutotuneError

# Sub-commands, by the module that runs them; anything else is the study itself.
COMMANDS = {
    "bench": "autotune.commands.bench",
    "cache": "autotune.commands.cache",
    "report": "autotune.commands.report",
    "compare": "autotune.commands.compare",
    "select": "autotune.commands.select",
}
STUDY = "autotune.commands.study"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv and argv[0] in COMMANDS else None
    command = importlib.import_module(COMMANDS[name] if name else STUDY)
    try:
        return command.main(argv[1:] if name else argv)
    except AutotuneError as error:
        print(f"autotune{' ' + name if name else ''}: error: {error}", file=sys.stderr)
        return error.exit_code
