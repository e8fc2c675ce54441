"""Reports a team decides from: report.html in headless Chromium, `autotune report`, `compare`
and `select` on two real tiny studies (int4-only and fp32-only exports of the same trainings)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from autotune.decisions.dominance import pareto_front
from tests.conftest import assert_generates, merge, tiny_dict

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def autotune(*args: str | Path) -> subprocess.CompletedProcess:
    """The command in a fresh process (studies)."""
    command = [sys.executable, "-m", "autotune", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.fixture
def command(capfd):
    """command(*args): `autotune *args` in this process (reports need no fresh one), with its
    exit code and what it wrote to stdout and stderr."""
    from autotune.cli import main

    def run(*args: str | Path) -> subprocess.CompletedProcess:
        capfd.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit:  # --help
            code = exit.code
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@pytest.fixture(scope="session")
def runs(tmp_path_factory, shared_cache) -> dict:
    """Two 4-trial studies of the tiny space differing in the export precision only (int4, fp32);
    the first run with --json (its stdout kept)."""
    root = tmp_path_factory.mktemp("runs")
    found: dict = {}
    for precision in ("int4", "fp32"):
        space = merge(
            merge(tiny_dict(), {"search": {"learning_rate": None}}),
            {
                "name": f"tiny-{precision}",
                # One epoch: at a quarter, most trainings still answer one label for most rows
                # and are left out of the pick as collapsed.
                "train": {"epochs": 1, "threads": 1},
                # A grid of 4 trainings, the same in both runs: the second reuses the adapters.
                "search": {
                    "lora_r": {"choices": [8, 16]},
                    "learning_rate": {"choices": [0.004, 0.008]},
                    "precision": precision,
                    "int4_block_size": None,
                    "int4_accuracy_level": None,
                },
                "latency": {"repeats": 5, "warmup": 1},
                "constraints": {"accuracy": ">= 0", "e2e_ms": "<= 50"},
                # every grid point trained to its end: the tables below count four
                "strategy": {
                    "sampler": "grid",
                    "expand": [],
                    "prune": False,
                    "fidelity": None,
                    "racing": None,
                },
            },
        )
        path = root / f"{precision}.yaml"
        path.write_text(yaml.safe_dump(space))
        out = root / precision
        extra = ["--json"] if precision == "int4" else []
        result = autotune(
            "--space", path, "--out", out, "--cache", shared_cache, "--trials", "4", *extra
        )
        assert result.returncode == 0, result.stderr[-3000:]
        found[precision] = out
        found[f"{precision}_result"] = result
    return found


# --------------------------------------------------------------------------- HTML in Chromium


def outside_references(html: str) -> list[str]:
    """src/href/url() values that point outside the file (anything but data: and #anchors)."""
    values = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    values += re.findall(r"""url\(\s*["']?([^"')]*)""", html)
    return [v for v in values if not v.startswith(("data:", "#"))]


def open_in_chromium(html_file: Path, screenshot: Path) -> dict:
    """Load a file in headless Chromium; every request, the images' state, the tables."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(html_file.resolve().as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => ({complete: i.complete, "
            "width: i.naturalWidth, alt: i.alt}))"
        )
        tables = page.evaluate(
            "Array.from(document.querySelectorAll('table')).map(t => t.rows.length)"
        )
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return {"requests": requests, "images": images, "tables": tables}


def check_page(html_file: Path, screenshot: Path, images: int, tables: int) -> None:
    html = html_file.read_text()
    assert outside_references(html) == []
    assert "<script" not in html.lower()
    seen = open_in_chromium(html_file, screenshot)
    assert all(url.startswith(("file:", "data:")) for url in seen["requests"]), seen["requests"]
    assert len(seen["images"]) == images
    assert all(i["complete"] and i["width"] > 300 for i in seen["images"]), seen["images"]
    assert len(seen["tables"]) >= tables and all(rows >= 2 for rows in seen["tables"])
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_outside_references_are_found():
    page = '<img src="data:image/png;base64,AA"><a href="#x">x</a><img src="https://a.b/c.png">'
    assert outside_references(page) == ["https://a.b/c.png"]
    assert outside_references("<style>body { background: url('//cdn/x.png') }</style>") == [
        "//cdn/x.png"
    ]


def test_report_html_opens_in_chromium(runs, tmp_path):
    # The figures: Pareto front, hypervolume, parameters (with one training the importances are
    # not drawn). The tables: the selected trial, the tiers, the front, all trials.
    # the Pareto front, the hypervolume, the objectives by knob and the loss curves
    check_page(runs["int4"] / "report.html", tmp_path / "report.png", images=4, tables=4)


def test_run_folder_has_the_reports_and_tables(runs):
    out = runs["int4"]
    csv = pd.read_csv(out / "trials.csv")
    parquet = pd.read_parquet(out / "trials.parquet")
    assert list(parquet["number"]) == list(csv["number"]) and len(csv) == 4
    assert parquet["accuracy"].tolist() == pytest.approx(csv["accuracy"].tolist())
    for name in ("pareto", "hypervolume", "importances", "parameters"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    for heading in (
        "The question",
        "The answer",
        "How sure",
        "The trade-off",
        "What mattered",
        "All trials",
    ):
        assert f"## {heading}" in report
    assert "Parameter importances are not yet informative: 4 distinct training" in report
    assert "lora_r" in report and "onnxruntime-genai 0.18.0" in report
    selection = json.loads((out / "selected" / "selection.json").read_text())
    assert f"Selected **trial {selection['trial']}**" in report


def test_json_summary_is_all_of_stdout(runs):
    summary = json.loads(runs["int4_result"].stdout)  # fails on anything else on stdout
    selection = json.loads((runs["int4"] / "selected" / "selection.json").read_text())
    assert summary["exit_code"] == 0 and summary["trials"]["complete"] == 4
    assert summary["selected"]["trial"] == selection["trial"]
    assert summary["selected"]["metrics"]["accuracy"] == pytest.approx(
        selection["metrics"]["accuracy"]
    )
    assert Path(summary["files"]["report_html"]).is_file()
    assert "trials (* selected" in runs["int4_result"].stderr  # the table went to stderr
    # The untrained base, at the space's first precision; never the selected trial.
    assert summary["reference"]["params"]["precision"] == "int4"
    assert 0 <= summary["reference"]["metrics"]["accuracy"] <= 1


def test_report_command_writes_the_report_from_the_study(runs, tmp_path, command):
    result = command("report", runs["fp32"], "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert {"report.html", "report.md", "trials.csv", "trials.parquet", "pareto.png"} <= {
        p.name for p in tmp_path.iterdir()
    }
    report = (tmp_path / "report.md").read_text()
    assert "tiny-fp32 on cpu" in report and "## Failed and pruned trials" not in report


def test_report_command_bad_input(tmp_path, command):
    missing = command("report", tmp_path / "absent")
    assert missing.returncode == 2 and "no such run folder" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    empty = command("report", tmp_path)
    assert empty.returncode == 2 and "has no study.db" in empty.stderr
    help_text = command("report", "--help")
    assert help_text.returncode == 0 and "run folder" in help_text.stdout


# --------------------------------------------------------------------------- compare


def test_compare_two_runs(runs, tmp_path, command):
    out = tmp_path / "compare"
    result = command("compare", runs["int4"], runs["fp32"], "--out", out)
    assert result.returncode == 0, result.stderr
    markdown = (out / "compare.md").read_text()
    # The difference between the spaces is named, and each run's pick is listed.
    assert "space `search.precision`: int4 int4, fp32 fp32" in markdown
    assert "int4 selects trial" in markdown and "fp32 selects trial" in markdown
    assert re.search(r"best feasible accuracy: (\*\*(int4|fp32)\*\* wins by|a tie)", markdown)
    assert "dominated by" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| int4 | selected")]
    assert len(table_rows) == 1
    check_page(out / "compare.html", tmp_path / "compare.png", images=1, tables=2)


def test_compare_needs_two_run_folders(runs, tmp_path, command):
    one = command("compare", runs["int4"], "--out", tmp_path)
    assert one.returncode == 2 and "at least two" in one.stderr
    bad = command("compare", runs["int4"], tmp_path / "absent", "--out", tmp_path)
    assert bad.returncode == 2 and "no such run folder" in bad.stderr


# --------------------------------------------------------------------------- select


def expected_ranking(csv: pd.DataFrame, min_accuracy: float) -> list[int]:
    """The feasible Pareto front under accuracy >= min_accuracy (and the study's e2e <= 50),
    most accurate first, then faster, then lower trial number: computed here from trials.csv.
    Collapsed trials (their predictions mostly one label) are never ranked while others are."""
    done = csv[(csv["state"] == "COMPLETE") & (csv["collapsed"] != 1)]
    feasible = done[(done["accuracy"] >= min_accuracy) & (done["e2e_ms.p50"] <= 50)]
    points = feasible[["accuracy", "e2e_ms.p50"]].values.tolist()
    front = feasible.iloc[pareto_front(points, ["maximize", "minimize"])]
    ordered = front.sort_values(["accuracy", "e2e_ms.p50", "number"], ascending=[False, True, True])
    return ordered["number"].tolist()


def test_select_ranks_under_stricter_constraints(runs, command):
    csv = pd.read_csv(runs["int4"] / "trials.csv")
    bound = float(csv["accuracy"].median())
    result = command("select", runs["int4"], "--where", f"accuracy>={bound}", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    ranking = [row["trial"] for row in answer["ranking"]]
    # The top tier holds every point-estimate Pareto-optimal candidate (none of them can be
    # beaten), and only candidates that meet the stricter bound; most accurate first.
    assert set(expected_ranking(csv, bound)) <= set(ranking)
    rows = csv.set_index("number").loc[ranking]
    assert (rows["accuracy"] >= bound).all()
    assert list(rows["accuracy"]) == sorted(rows["accuracy"], reverse=True)
    tied = [row["trial"] for row in answer["ranking"] if row["tied"]]
    assert answer["selected"] in tied and ranking[0] in tied
    assert answer["constraints"] == ["e2e_ms.p50 <= 50", f"accuracy >= {bound:g}"]
    # --prefer the latency objective: the pick is among those tied with the fastest.
    fast = command(
        "select", runs["int4"], "--where", f"accuracy>={bound}", "--prefer", "e2e_ms", "--json"
    )
    answer = json.loads(fast.stdout)
    assert answer["selected"] in [row["trial"] for row in answer["ranking"] if row["tied"]]


def test_select_impossible_constraints_name_the_closest(runs, command):
    csv = pd.read_csv(runs["int4"] / "trials.csv")
    result = command("select", runs["int4"], "--where", "accuracy>=1.5")
    assert result.returncode == 1
    best = int(csv.sort_values(["accuracy", "number"], ascending=[False, True]).iloc[0]["number"])
    message = result.stderr.strip().splitlines()[-1]
    assert "no candidate meets e2e_ms.p50 <= 50, accuracy >= 1.5" in message
    assert f"the closest is trial {best} " in message and "misses accuracy >= 1.5" in message


def test_select_exports_a_bundle_that_generates(runs, tmp_path, command):
    out = tmp_path / "bundle"
    result = command("select", runs["fp32"], "--where", "e2e_ms.p90<=50", "--export", out)
    assert result.returncode == 0, result.stderr
    selection = json.loads((out / "selection.json").read_text())
    csv = pd.read_csv(runs["fp32"] / "trials.csv").set_index("number")
    row = csv.loc[selection["trial"]]
    assert "e2e_ms.p90 <= 50" in selection["constraints_applied"]
    card = (out / "README.md").read_text()
    for figure in ("e2e_ms.p50", "e2e_ms.p90", "decode_ms.p50", "size_mb"):
        assert f"| {figure} | {row[figure]:.4g} |" in card  # 5 repeats: too few for an interval
    low, high = row["accuracy.lo"], row["accuracy.hi"]
    assert f"| accuracy | {row['accuracy']:.4g} [{low:.4g}, {high:.4g}] |" in card
    assert "Latency method" in card and "fp32 for cpu" in card and "tiny Phi-3" in card
    assert "AMD" in card or "Intel" in card or "machine:" in card
    assert_generates(out)
    # The same export again replaces it; a folder of other files is refused.
    again = command("select", runs["fp32"], "--export", out)
    assert again.returncode == 0, again.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    refused = command("select", runs["fp32"], "--export", tmp_path / "other")
    assert refused.returncode == 2 and "holds other files" in refused.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "accuracy>0.8"], "expected METRIC>=NUMBER or METRIC<=NUMBER"),
        (["--where", "speed>=1"], "expected a metric"),
        (["--where", "decode_ms.p42<=1"], "expected a metric"),
        (["--where", "gpu_mem_mb<=100"], "gpu_mem_mb was not measured in this run"),
        (["--prefer", "size_mb"], "expected one of the objectives"),
    ],
)
def test_select_bad_input(runs, args, message, command):
    result = command("select", runs["int4"], *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
