"""Does a study survive `kill -9` at any moment, and does the same command finish it correctly?

For each moment (the base model build, a training, an export, a measurement, the gap between two
trials, a sibling trial) this starts a tiny study, watches the file system for the moment (a new
`.tmp-*` build folder under the stage cache, a new trials/<n>/metrics.json), sends SIGKILL to the
process, then runs the same command again to completion and checks:

- stage: the kill came at the intended moment (the build folder was still unfinished after it);
- kept: trials COMPLETE before the kill are still COMPLETE, with the same params and values;
- budget: the study ends with exactly the budget of COMPLETE trials;
- retried: each trial the kill interrupted is FAIL ("interrupted: ...") and a later COMPLETE trial
  with its params has user attribute retry_of = its number;
- entries: every cache entry a completed trial used has its manifest (no `.tmp-*` or half entry);
- exit: the second run exits 0.

Each study is the embedded tiny space made small (1 epoch, 3 latency repeats) with a budget of
6: one training and its five precision siblings, so a retry queued behind the siblings still runs
within the budget. The moments share one stage cache; the base moment needs an empty one.

A moment can be missed (the process finished the build between the sighting and the kill): it is
then tried again with a new seed and run folder, up to --attempts times.

Run: .venv/bin/python -m bench.kill_resume [--moments training export ...] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from autotune.candidates.cache import TMP_PREFIX  # noqa: E402
from autotune.spaces import DEFAULT_SPACE  # noqa: E402
from bench.lib.kill_checks import (  # noqa: E402
    TrialView,
    check_budget,
    check_entries,
    check_kept,
    check_retried,
    unfinished_entries,
)
from bench.lib.results import write_result  # noqa: E402

WORK = Path(__file__).resolve().parent / ".cache" / "kill_resume"
POLL_S = 0.005


@dataclass(frozen=True)
class Moment:
    """When to kill: once `after_trials` trials/<n>/metrics.json files exist, `delay_s` after a
    new build folder of `stage` appears, or at once when there is no stage."""

    name: str
    stage: str | None
    what: str
    delay_s: float = 0.0
    after_trials: int = 0
    fresh_cache: bool = False


MOMENTS = {
    m.name: m
    for m in (
        Moment("base", "base", "base model build, empty cache", delay_s=2.0, fresh_cache=True),
        Moment("training", "adapter", "training of trial 0", delay_s=3.0),
        Moment("export", "onnx", "export of trial 0 (its siblings queued)"),
        Moment("measure", "measure", "measurement of trial 0", delay_s=0.2),
        Moment("between", None, "right after trial 1's metrics.json", after_trials=2),
        Moment("sibling", "measure", "measurement of sibling trial 1", delay_s=0.2, after_trials=1),
    )
}


@dataclass
class Outcome:
    """One moment: what was seen, the checks (name -> problem, "" when passed), the leftovers."""

    moment: str
    what: str
    attempts: int = 0
    seen: str = ""
    resumed: str = ""
    checks: dict[str, str] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not any(self.checks.values())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moments", nargs="+", choices=MOMENTS, default=list(MOMENTS))
    parser.add_argument("--work", type=Path, default=WORK, help="emptied, then holds everything")
    parser.add_argument("--trials", type=int, default=6, help="budget of each study")
    parser.add_argument("--epochs", type=float, default=1.0, help="train.epochs")
    parser.add_argument("--pretrain-epochs", type=int, default=1, help="tiny base pretraining")
    parser.add_argument("--eval-fraction", type=float, default=0.05, help="data.eval_fraction")
    parser.add_argument("--attempts", type=int, default=3, help="tries per moment when missed")
    parser.add_argument("--seed", type=int, default=0, help="first sampler seed")
    return parser.parse_args()


# --------------------------------------------------------------------------- running a study


def write_space(path: Path, args: argparse.Namespace) -> Path:
    """The embedded tiny space, made small: a short training on a briefly pretrained base, a
    smaller eval split, 3 latency repeats."""
    raw = yaml.safe_load(DEFAULT_SPACE.read_text())
    raw["data"]["files"] = str(DEFAULT_SPACE.parent / raw["data"]["files"])
    raw["data"]["eval_fraction"] = args.eval_fraction
    raw["model"]["tiny"]["pretrain_epochs"] = args.pretrain_epochs
    raw["train"]["epochs"] = args.epochs
    raw["latency"]["repeats"] = 3
    raw["budget"] = {"trials": args.trials}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def study_command(space: Path, out: Path, cache: Path, seed: int) -> list[str]:
    return [
        sys.executable, "-m", "autotune", "--space", str(space), "--target", "cpu",
        "--out", str(out), "--cache", str(cache), "--seed", str(seed),
    ]  # fmt: skip


def tmp_folders(cache: Path, stage: str) -> set[str]:
    try:
        return {e.name for e in os.scandir(cache / stage) if e.name.startswith(TMP_PREFIX)}
    except FileNotFoundError:
        return set()


def metrics_files(out: Path) -> list[Path]:
    """The trials/<n>/metrics.json files written so far."""
    try:
        folders = list(os.scandir(out / "trials"))
    except FileNotFoundError:
        return []
    return [p for f in folders if (p := Path(f.path) / "metrics.json").exists()]


@dataclass
class Sighting:
    """The moment as seen on disk: the build folder (or metrics file) and when."""

    path: Path
    at: float


def wait_for_moment(
    proc: subprocess.Popen, moment: Moment, out: Path, cache: Path
) -> Sighting | None:
    """Poll every 5 ms until the moment shows; None when the process ends first."""
    stage = moment.stage or ""
    known: set[str] | None = None  # the stage's build folders once enough trials are done
    while proc.poll() is None:
        if known is None:
            metrics = metrics_files(out)
            if len(metrics) >= moment.after_trials:
                if not stage:
                    newest = max(metrics, key=lambda p: int(p.parent.name))
                    return Sighting(newest, time.perf_counter())
                known = tmp_folders(cache, stage)
        elif new := tmp_folders(cache, stage) - known:
            return Sighting(cache / stage / sorted(new)[0], time.perf_counter())
        time.sleep(POLL_S)
    return None


def kill(proc: subprocess.Popen, sighting: Sighting, delay_s: float) -> float:
    """SIGKILL the process `delay_s` after the sighting; seconds from sighting to kill."""
    time.sleep(max(0.0, sighting.at + delay_s - time.perf_counter()))
    os.kill(proc.pid, signal.SIGKILL)
    killed = time.perf_counter()
    proc.wait()
    return killed - sighting.at


def snapshot(out: Path) -> dict[int, TrialView]:
    """The study's trials, read from out/study.db (empty when there is none yet)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if not (out / "study.db").is_file():
        return {}
    try:
        study = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'study.db'}")
    except (KeyError, ValueError):  # the process died before the study was created
        return {}
    return {
        t.number: TrialView(
            t.number,
            t.state.name,
            tuple(t.values) if t.values is not None else None,
            dict(t.params),
            dict(t.user_attrs),
        )
        for t in study.get_trials(deepcopy=False)
    }


# --------------------------------------------------------------------------- one moment


def describe(moment: Moment, sighting: Sighting, lag: float, start: float, before: dict) -> str:
    running = [n for n, t in before.items() if t.state == "RUNNING"]
    complete = [n for n, t in before.items() if t.state == "COMPLETE"]
    where = f"{sighting.path.parent.name}/{sighting.path.name}"
    text = f"{where} seen at {sighting.at - start:.1f}s, killed {lag * 1e3:.0f} ms later"
    if moment.stage:
        state = "still unfinished" if sighting.path.exists() else "GONE (build had finished)"
        text += f", {state} after the kill"
    return f"{text}; at the kill RUNNING {running}, COMPLETE {complete}"


def hit(moment: Moment, sighting: Sighting, before: dict[int, TrialView]) -> bool:
    """Whether the kill came at the moment: the build folder unfinished, a sibling running."""
    if moment.stage and not sighting.path.exists():
        return False
    if moment.name == "sibling":
        running = [t for t in before.values() if t.state == "RUNNING"]
        return any("sibling_of" in t.attrs for t in running)
    return True


def retries(before: dict[int, TrialView], after: dict[int, TrialView]) -> str:
    """Each interrupted trial and its retries, as "1 -> 6 COMPLETE"."""
    pairs = []
    for number in (n for n, t in before.items() if t.state == "RUNNING"):
        again = [t for t in after.values() if t.attrs.get("retry_of") == number]
        shown = ", ".join(f"{t.number} {t.state}" for t in again) or "none"
        pairs.append(f"{number} -> {shown}")
    return "; ".join(pairs) or "none (no trial was running)"


def pick_cache(moment: Moment, work: Path, name: str) -> Path:
    """The shared cache, or for a moment that needs an empty one, the shared one while it is
    still empty (so its base is built for the others) and a new one after that."""
    shared = work / "cache"
    if moment.fresh_cache and shared.exists():
        return work / f"cache-{name}"
    return shared


@dataclass
class Attempt:
    """One study run for a moment: where it runs, and the command both runs use."""

    name: str
    out: Path
    cache: Path
    command: list[str]
    logs: Path
    old_leftovers: set[str]  # unfinished entries of the cache before this run


def kill_at(moment: Moment, attempt: Attempt, outcome: Outcome) -> dict[int, TrialView] | None:
    """Start the study, kill it at the moment; the trials at the kill, or None when missed."""
    with (attempt.logs / f"{attempt.name}-killed.log").open("w") as log:
        proc = subprocess.Popen(attempt.command, stdout=log, stderr=subprocess.STDOUT)
        start = time.perf_counter()
        sighting = wait_for_moment(proc, moment, attempt.out, attempt.cache)
        if sighting is None:
            outcome.seen = "the study ended before the moment"
            return None
        lag = kill(proc, sighting, moment.delay_s)
    before = snapshot(attempt.out)
    outcome.seen = describe(moment, sighting, lag, start, before)
    return before if hit(moment, sighting, before) else None


def resume_and_check(
    attempt: Attempt, before: dict[int, TrialView], budget: int, outcome: Outcome
) -> None:
    """Run the same command again to the end and check the study it leaves."""
    log = attempt.logs / f"{attempt.name}-again.log"
    with log.open("w") as handle:
        again = subprocess.run(attempt.command, stdout=handle, stderr=subprocess.STDOUT)
    after = snapshot(attempt.out)
    notes = [line for line in log.read_text().splitlines() if "interrupted" in line]
    outcome.resumed = f"{' '.join(notes) or 'no interrupted trials noted'}; retries: "
    outcome.resumed += retries(before, after)
    outcome.checks = {
        "stage": "",
        "kept": check_kept(before, after),
        "budget": check_budget(after, budget),
        "retried": check_retried(before, after),
        "entries": check_entries(after, attempt.out, attempt.cache),
        "exit": "" if again.returncode == 0 else f"exit {again.returncode}",
    }
    outcome.leftovers = sorted(unfinished_entries(attempt.cache) - attempt.old_leftovers)


def run_moment(index: int, moment: Moment, args: argparse.Namespace, space: Path) -> Outcome:
    outcome = Outcome(moment.name, moment.what)
    start = time.perf_counter()
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for number in range(args.attempts):
        outcome.attempts = number + 1
        name = f"{moment.name}-{number}"
        out, cache = args.work / "runs" / name, pick_cache(moment, args.work, name)
        command = study_command(space, out, cache, args.seed + 10 * index + number)
        attempt = Attempt(name, out, cache, command, logs, unfinished_entries(cache))
        before = kill_at(moment, attempt, outcome)
        if before is not None:
            resume_and_check(attempt, before, args.trials, outcome)
            break
        print(f"  {moment.name}: attempt {number + 1} missed: {outcome.seen}", flush=True)
    else:
        outcome.checks = {"stage": f"missed in {args.attempts} attempts"}
    outcome.seconds = time.perf_counter() - start
    return outcome


# --------------------------------------------------------------------------- reporting


def report(outcome: Outcome) -> None:
    verdict = "PASS" if outcome.passed else "FAIL"
    tries = f"{outcome.attempts} attempt(s)"
    print(f"\n{outcome.moment} ({outcome.what}): {verdict}, {tries}, {outcome.seconds:.0f}s")
    print(f"  seen:    {outcome.seen}")
    print(f"  resumed: {outcome.resumed}")
    for name, problem in outcome.checks.items():
        print(f"  {name:8} {'ok' if not problem else 'FAIL: ' + problem}")
    print(f"  leftovers (not used): {', '.join(outcome.leftovers) or 'none'}", flush=True)


def mark(checks: dict[str, str], name: str) -> str:
    if name not in checks:
        return "-"
    return "FAIL" if checks[name] else "ok"


def table(outcomes: list[Outcome]) -> None:
    names = ["stage", "kept", "budget", "retried", "entries", "exit"]
    header = f"{'moment':10} {'tries':>5} " + " ".join(f"{n:>7}" for n in names)
    print("\n" + header + f" {'seconds':>8}  result")
    for o in outcomes:
        marks = " ".join(f"{mark(o.checks, n):>7}" for n in names)
        verdict = "PASS" if o.passed else "FAIL"
        print(f"{o.moment:10} {o.attempts:>5} {marks} {o.seconds:>8.0f}  {verdict}")


def main() -> int:
    args = parse_args()
    start = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)
    space = write_space(args.work / "space.yaml", args)
    print(f"kill -9 and resume: budget {args.trials}, epochs {args.epochs}, work {args.work}")
    outcomes = []
    for index, name in enumerate(args.moments):
        outcomes.append(run_moment(index, MOMENTS[name], args, space))
        report(outcomes[-1])
    table(outcomes)
    passed = all(o.passed for o in outcomes)
    print(f"\n{'PASS' if passed else 'FAIL'}; total {time.perf_counter() - start:.0f}s")
    verdicts = {o.moment: o.passed for o in outcomes}
    write_result("kill_resume", {"passed": verdicts, "moments": outcomes}, args)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
