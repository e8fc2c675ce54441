"""What the benchmarks share: the noise-aware reading of the search-efficiency grid's front (the
one dominance rule of decisions/) and the result file each benchmark writes."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

from autotune.decisions.candidate import Candidate, Evidence
from bench.lib.results import RESULTS_ENV, write_result
from bench.lib.search_costs import GridKey, TrialRow
from bench.lib.search_ties import GridEvidence, front, front_found
from tests.conftest import REPO

LATENCY = "decode_ms"
QUICK = [10.0 + 0.01 * i for i in range(30)]  # decode repeats around 10.15 ms
ACCURATE, FAST, BEHIND = (32, 1e-3, "fp32"), (32, 1e-3, "int4"), (8, 1e-4, "fp32")
CLOSE, SLOWER, LESS_ACCURATE = (32, 3e-4, "fp32"), (32, 3e-3, "fp32"), (8, 1e-3, "fp32")


def point(number: int, right: int, samples: list[float]) -> Candidate:
    """A grid point: `right` of 100 eval examples correct (the first ones), its repeats."""
    correct = "1" * right + "0" * (100 - right)
    values = {"accuracy": right / 100, LATENCY: float(np.median(samples))}
    return Candidate(number, values, {}, evidence=Evidence(correct, {LATENCY: samples}))


def grid(extra: dict[GridKey, Candidate]) -> GridEvidence:
    """Two front points (accurate, fast), one they dominate, and `extra` points."""
    points = {
        ACCURATE: point(0, 80, QUICK),
        FAST: point(1, 70, [s / 2 for s in QUICK]),
        BEHIND: point(2, 60, [s * 1.2 for s in QUICK]),
        **extra,
    }
    return GridEvidence({"accuracy": "maximize", LATENCY: "minimize"}, points)


def completed(*keys: GridKey) -> list[TrialRow]:
    return [TrialRow(n, "COMPLETE", k, "", "", (0.0, 0.0), 0.0, False) for n, k in enumerate(keys)]


def test_the_front_is_the_points_no_other_dominates():
    assert sorted(front(grid({}))) == sorted([ACCURATE, FAST])


def test_a_front_point_counts_as_found_when_nothing_tells_it_apart():
    # One example fewer right and 2% slower: McNemar cannot tell 1 discordant example apart, and
    # a clean 2% shift, which the rank test alone calls significant, is under the one rule's
    # minimum latency effect (3%).
    evidence = grid({CLOSE: point(3, 79, [s * 1.02 for s in QUICK])})
    assert sorted(front(evidence)) == sorted([ACCURATE, FAST])  # the tie is dominated, not on it
    assert front_found(completed(CLOSE), evidence) == (1, 2)
    assert front_found(completed(ACCURATE, FAST), evidence) == (2, 2)
    assert front_found(completed(BEHIND), evidence) == (0, 2)


def test_a_distinguishably_worse_point_does_not_count():
    slower = point(3, 80, [s * 1.10 for s in QUICK])  # 10% slower on every repeat
    less_accurate = point(4, 62, QUICK)  # 18 examples fewer right
    evidence = grid({SLOWER: slower, LESS_ACCURATE: less_accurate})
    assert front_found(completed(SLOWER), evidence) == (0, 2)
    assert front_found(completed(LESS_ACCURATE), evidence) == (0, 2)


def test_a_result_file_holds_the_figures_and_where_they_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    args = argparse.Namespace(target="cpu", rounds=3, model=Path("some/model"))
    figures = {"ratio": np.float64(1.25), "counts": (3, 4), "model": Path("m")}
    first = write_result("probe", figures, args)
    second = write_result("probe", figures, args)
    assert first.parent == tmp_path and first.name.startswith("probe-") and first != second
    result = json.loads(first.read_text())
    assert result["figures"] == {"ratio": 1.25, "counts": [3, 4], "model": "m"}
    assert result["arguments"] == {"target": "cpu", "rounds": 3, "model": "some/model"}
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    assert result["commit"]["sha"] == head.stdout.decode().strip()
    assert isinstance(result["commit"]["dirty"], bool)
    assert datetime.fromisoformat(result["date"]).utcoffset().total_seconds() == 0
    assert sys.orig_argv[0] in result["command"]
    assert result["machine"]["usable_cores"] >= 1 and "optuna" in result["machine"]["versions"]
    assert 0 < result["wall_s"] < 24 * 3600
