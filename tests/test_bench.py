"""`autotune bench` on real exported models, and its errors; a benchmark of bench/ run as a
module, and the result file it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotune.evaluators.accuracy import measure_accuracy
from autotune.evaluators.latency import measure_latency
from autotune.evaluators.stats import median_halfwidth
from autotune.spaces import LatencySection
from tests.conftest import REPO

pytestmark = pytest.mark.slow


def bench(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "autotune", "bench", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_bench_of_a_tiny_exported_model(candidate, tiny, tmp_path):
    _, dataset, _ = tiny
    out = tmp_path / "bench.json"
    space = str(REPO / "spaces" / "tiny.yaml")
    model = str(candidate / "fp32")
    done = bench(model, "--target", "cpu", "--space", space, "--json", str(out), "--repeats", "12")
    assert done.returncode == 0, done.stderr
    for figure in ("ttft_ms", "decode_ms", "e2e_ms", "tokens_per_s", "p99", "cv"):
        assert figure in done.stdout
    for words in ("peak resident memory", "size on disk", "accuracy", "macro-F1"):
        assert words in done.stdout
    result = json.loads(out.read_text())
    metrics = result["metrics"]
    assert result["latency"]["repeats"] == 12
    for figure in ("decode_ms.p50", "ttft_ms.p50", "accuracy"):  # 12 repeats allow an interval
        assert metrics[f"{figure}.lo"] <= metrics[figure] <= metrics[f"{figure}.hi"]
    assert "ttft_ms.p90.lo" not in metrics  # but not yet one of the p90
    assert result["latency"]["settings"]["prompt_tokens"] == 64  # from the space's latency section
    assert metrics["decode_ms.p50"] > 0 and metrics["tokens_per_s.cv"] >= 0
    assert metrics["peak_mem_mb"] > 0 and metrics["size_mb"] > 0
    # The same evaluator as the study: the same predictions, hence the same accuracy.
    direct = measure_accuracy(Path(model), "cpu", dataset.eval, dataset.labels, threads=1)
    assert metrics["accuracy"] == direct.accuracy and metrics["macro_f1"] == direct.macro_f1
    accuracy = result["accuracy"]
    matrix = accuracy["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == len(dataset.eval)
    assert set(accuracy["per_label"]) == set(dataset.labels)
    environment = result["environment"]
    assert environment["usable_cores"] >= 1 and "onnxruntime-genai" in environment["versions"]


def test_bench_without_a_space_measures_latency_only(candidate, tmp_path):
    out = tmp_path / "latency.json"
    done = bench(str(candidate / "fp32"), "--json", str(out), "--repeats", "4", "--new-tokens", "3")
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["accuracy"] is None and "accuracy" not in result["metrics"]
    assert result["latency"]["settings"]["new_tokens"] == 3


def test_repeats_until_the_median_is_stable(candidate, tiny):
    _, dataset, _ = tiny
    texts = [e.prompt for e in dataset.eval[:4]]
    loose = LatencySection(prompt_tokens=16, new_tokens=3, warmup=1, repeats=3, stable=0.5)
    loose = measure_latency(candidate / "fp32", "cpu", texts, loose)
    # It stopped at the first count where both medians were known to within 50%.
    assert 6 <= loose.repeats < 300
    figures = ("ttft_ms", "decode_ms")
    assert all(loose.halfwidth[f] < 0.5 for f in figures)
    assert any(median_halfwidth(loose.samples[f][:-1]) >= 0.5 for f in figures)
    strict = LatencySection(
        prompt_tokens=16, new_tokens=3, warmup=0, repeats=3, stable=1e-9, max_repeats=12
    )
    assert measure_latency(candidate / "fp32", "cpu", texts, strict).repeats == 12


@pytest.mark.parametrize("broken", ["missing", "no_config", "bad_config"])
def test_bench_of_a_missing_or_broken_folder(tmp_path, broken):
    folder = tmp_path / "model"
    if broken != "missing":
        folder.mkdir()
    if broken == "bad_config":
        (folder / "genai_config.json").write_text('{"model": {"type": "phi3"}}')
    done = bench(str(folder), "--target", "cpu")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert str(folder) in done.stderr and "onnxruntime-genai" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_benchmark_runs_as_a_module_and_writes_its_result(candidate, tmp_path):
    model = str(candidate / "fp32")
    command = [sys.executable, "-m", "bench.latency_fidelity", "--model", model, "--rounds", "1"]
    command += ["--repeats", "3", "--warmup", "0", "--prompt-tokens", "16", "--new-tokens", "3"]
    env = {**os.environ, "BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "part 1, agreement within 5%" in done.stdout and "part 2" in done.stdout
    (written,) = tmp_path.glob("latency_fidelity-*.json")
    assert f"result: {written}" in done.stdout
    result = json.loads(written.read_text())
    assert result["name"] == "latency_fidelity" and "-m bench.latency_fidelity" in result["command"]
    assert result["arguments"]["model"] == model and result["arguments"]["repeats"] == 3
    figures = result["figures"]
    ttft = figures["part1"]["medians"]["ttft_ms"]
    assert ttft["ratio"] == ttft["autotune"] / ttft["independent"] > 0
    assert len(figures["part2"]["runs"]) == 3
    assert figures["passed"] == (figures["part1"]["passed"] and figures["part2"]["passed"])
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    assert result["commit"]["sha"] == head.stdout.decode().strip()
    assert result["machine"]["target"] == "cpu" and result["wall_s"] > 0
