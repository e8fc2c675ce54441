"""`autotune cache ls|du|prune`: see and clean the stage caches of studies.

    autotune cache ls [--cache DIR]
    autotune cache du [--cache DIR]
    autotune cache prune [--cache DIR] [--stage STAGE ...] [--older-than DURATION] [--dry-run]
    autotune cache prune [--cache DIR] --all [--dry-run]

Without --cache, every `runs/*/cache` folder under the current directory is used. Prune always
removes incomplete entries and temporary build folders older than an hour (younger ones may
belong to a build still running). Exit codes: 0 done; 1 some entry could not be removed;
2 bad input (cache folder, stage, duration, missing filter), in one message.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from autotune.candidates.cache import (
    LEFTOVER_GRACE_S,
    STAGES,
    CacheEntry,
    list_entries,
    remove_entry,
    stage_folders,
)
from autotune.errors import UsageError
from autotune.spaces import parse_duration

MARKS = {
    "complete": "",
    "incomplete": "incomplete: no manifest",
    "temporary": "temporary build folder",
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="autotune cache", description="List, measure and prune stage caches of studies."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{ls,du,prune}")
    helps = {
        "ls": "one line per entry: stage, key, size, age, build time, state",
        "du": "size and entry count per stage, and the total",
        "prune": "remove entries by stage or age, and stale leftovers of crashed builds",
    }
    subs = {name: commands.add_parser(name, help=text) for name, text in helps.items()}
    for sub in subs.values():
        sub.add_argument(
            "--cache",
            type=Path,
            metavar="DIR",
            help="cache folder (default: every runs/*/cache folder here)",
        )
    prune = subs["prune"]
    prune.add_argument(
        "--stage", action="extend", nargs="+", default=[], help="remove entries of these stages"
    )
    prune.add_argument(
        "--older-than", metavar="DURATION", help="remove entries older than this: 30m, 8h, 7d"
    )
    prune.add_argument("--all", action="store_true", help="remove every entry")
    prune.add_argument("--dry-run", action="store_true", help="print what would be removed")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    return ACTIONS[args.command](args)


def find_caches(cache: Path | None) -> list[Path]:
    """The cache folder given, or every `runs/*/cache` folder under the current directory."""
    if cache is not None:
        if not cache.is_dir():
            raise UsageError(f"no cache folder at {cache}")
        if (cache / "cache").is_dir() and not stage_folders(cache):
            raise UsageError(f"{cache} is a run folder; its cache is {cache / 'cache'}")
        return [cache]
    found = sorted(p for p in Path("runs").glob("*/cache") if p.is_dir())
    if not found:
        raise UsageError(f"no runs/*/cache folder under {Path.cwd()}; pass --cache DIR")
    print(f"caches: {', '.join(map(str, found))} (pass --cache DIR for another)")
    return found


# --------------------------------------------------------------------------- ls and du


def ls(args: argparse.Namespace) -> int:
    now = time.time()
    for cache in find_caches(args.cache):
        entries = list_entries(cache)
        if not entries:
            print(f"{cache}: no entries")
            continue
        table = Table(title=f"{cache}: {len(entries)} entries")
        for name in ("stage", "key", "MiB", "age", "build s", "state"):
            right = name in ("MiB", "age", "build s")
            table.add_column(name, justify="right" if right else "left", no_wrap=True)
        for entry in entries:
            build = "" if entry.seconds is None else f"{entry.seconds:.1f}"
            table.add_row(
                entry.stage,
                entry.key,
                mib(entry.size_bytes),
                age_text(entry.age(now)),
                build,
                MARKS[entry.state],
            )
        console().print(table)
    return 0


def du(args: argparse.Namespace) -> int:
    caches, grand_count, grand_size = find_caches(args.cache), 0, 0
    for cache in caches:
        entries = list_entries(cache)
        table = Table(title=str(cache))
        for name in ("stage", "entries", "leftovers", "MiB"):
            table.add_column(name, justify="left" if name == "stage" else "right")
        for stage in sorted({e.stage for e in entries}):
            table.add_row(stage, *usage([e for e in entries if e.stage == stage]))
        table.add_section()
        table.add_row("total", *usage(entries))
        console().print(table)
        grand_count += len(entries)
        grand_size += sum(e.size_bytes for e in entries)
    if len(caches) > 1:
        print(f"all caches: {grand_count} entries, {mib(grand_size)} MiB")
    return 0


def usage(entries: list[CacheEntry]) -> tuple[str, str, str]:
    """Complete entries, leftovers (incomplete or temporary) and MiB of a group of entries."""
    complete = sum(e.complete for e in entries)
    size = sum(e.size_bytes for e in entries)
    return str(complete), str(len(entries) - complete), mib(size)


# --------------------------------------------------------------------------- prune


def prune(args: argparse.Namespace) -> int:
    older_than = check_filters(args)
    caches = find_caches(args.cache)
    check_stages(args.stage, caches)
    now, verb = time.time(), "would remove" if args.dry_run else "removed"
    removed, freed, failures = 0, 0, 0
    for cache in caches:
        for entry in list_entries(cache):
            if young_leftover(entry, now):
                print(
                    f"kept {entry.path} ({MARKS[entry.state]}, {age_text(entry.age(now))} old): "
                    f"younger than {age_text(LEFTOVER_GRACE_S)}, it may belong to a build "
                    "still running"
                )
            if not selected(entry, args, older_than, now):
                continue
            try:
                size = entry.size_bytes if args.dry_run else remove_entry(entry)
            except OSError as error:
                print(f"autotune cache: cannot remove {entry.path}: {error}", file=sys.stderr)
                failures += 1
                continue
            removed, freed = removed + 1, freed + size
            print(f"{verb} {describe(entry, now)}")
    if removed == 0:
        print("nothing to remove")
    else:
        print(f"{verb} {removed} entries: {mib(freed)} MiB freed{' (dry run)' * args.dry_run}")
    return 1 if failures else 0


def check_filters(args: argparse.Namespace) -> float | None:
    """The --older-than seconds, once the filters are known to make sense."""
    if args.all and (args.stage or args.older_than):
        raise UsageError("--all removes every entry; do not combine it with --stage/--older-than")
    if not (args.all or args.stage or args.older_than):
        raise UsageError(
            "prune needs a filter: pass --stage STAGE, --older-than DURATION (e.g. 7d) or --all"
        )
    if args.older_than is None:
        return None
    try:
        return parse_duration(args.older_than)
    except ValueError as error:
        raise UsageError(f"--older-than: {error}") from None


def check_stages(stages: list[str], caches: list[Path]) -> None:
    """Every --stage is one the study writes or one these caches hold."""
    known = set(STAGES) | {p.name for cache in caches for p in stage_folders(cache)}
    for stage in stages:
        if stage not in known:
            raise UsageError(f"unknown stage {stage!r}; expected one of {', '.join(sorted(known))}")


def selected(
    entry: CacheEntry, args: argparse.Namespace, older_than: float | None, now: float
) -> bool:
    """Whether prune removes `entry`: stale leftovers always, complete entries by the filters."""
    if not entry.complete:
        return entry.age(now) >= LEFTOVER_GRACE_S
    if args.all:
        return True
    stage_ok = not args.stage or entry.stage in args.stage
    return stage_ok and (older_than is None or entry.age(now) >= older_than)


def young_leftover(entry: CacheEntry, now: float) -> bool:
    return not entry.complete and entry.age(now) < LEFTOVER_GRACE_S


def describe(entry: CacheEntry, now: float) -> str:
    mark = f", {MARKS[entry.state]}" if MARKS[entry.state] else ""
    return f"{entry.path} ({mib(entry.size_bytes)} MiB, {age_text(entry.age(now))} old{mark})"


# --------------------------------------------------------------------------- formatting


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        out = Console(highlight=False, width=160)
    return out


def mib(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:,.2f}"


def age_text(seconds: float) -> str:
    """An age rounded down to its largest unit: '45 s', '12 min', '3 h', '9 d'."""
    for unit, length, limit in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 48 * 3600)):
        if seconds < limit:
            return f"{int(seconds // length)} {unit}"
    return f"{int(seconds // 86400)} d"


ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ls": ls,
    "du": du,
    "prune": prune,
}
