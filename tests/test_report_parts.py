"""Parts of the reports that need no study: --where parsing, the terminal progress, the
Markdown/HTML rendering of report blocks, and Pareto panels for three objectives."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest
from rich.console import Console

from autotune.console.progress import Progress
from autotune.decisions.candidate import Candidate
from autotune.decisions.selection import select
from autotune.errors import UsageError
from autotune.reports.document import Bullets, Heading, Table, Text, to_markdown
from autotune.reports.html import to_html
from autotune.reports.selection import parse_where


def test_parse_where():
    constraint = parse_where("decode_ms.p90<=5")
    assert (constraint.metric, constraint.op, constraint.bound) == ("decode_ms.p90", "<=", 5.0)
    assert str(parse_where(" accuracy >= 0.8 ")) == "accuracy >= 0.8"
    assert parse_where("size_mb<=1e3").bound == 1000
    for bad, message in [
        ("accuracy=0.8", "expected METRIC>=NUMBER"),
        ("accuracy>=high", "expected METRIC>=NUMBER"),
        ("latency<=3", "expected a metric"),
        ("accuracy.p90>=0.5", "expected a metric"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_where(bad)


def test_progress_bars_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(
        console=Console(file=stream, force_terminal=True, width=100, highlight=False)
    )
    with progress.study(total=4, completed=1):
        progress.trial_started(3, {"lora_r": 8})
        with progress.step("train"):
            progress.completed(2, 4)
        progress.trial_done(3, {"train": 1.0}, {"accuracy": 0.5})
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "2/4 trials" in text and "trial 3 · train" in text
    assert "trial 3  lora_r=8" in text and "done  train 1.0s  →  accuracy 0.5" in text


def test_progress_plain_lines_elsewhere():
    stream = io.StringIO()
    progress = Progress(console=Console(file=stream, force_terminal=False, width=100))
    with progress.study(total=4, completed=1):
        progress.trial_started(3, {"lora_r": 8})
        with progress.step("train"):
            progress.completed(2, 4)
        progress.trial_done(3, {"train": 1.0}, {"accuracy": 0.5})
    text = stream.getvalue()
    assert "\x1b" not in text and "trials" not in text
    assert text.splitlines() == ["trial 3  lora_r=8", "  done  train 1.0s  →  accuracy 0.5"]


def test_blocks_render_to_markdown_and_escaped_html(tmp_path):
    frame = pd.DataFrame({"trial": [1], "note": ["a|b <c>"], "value": [0.123456]})
    blocks = [Heading("Title", 1), Text("**bold** and `code`"), Bullets(["x"]), Table(frame)]
    markdown = to_markdown(blocks, tmp_path)
    assert "# Title" in markdown and "| 1 | a\\|b <c> | 0.1235 |" in markdown
    html = to_html(blocks, "t")
    assert "<b>bold</b> and <code>code</code>" in html
    assert "a|b &lt;c&gt;" in html and "<td>0.1235</td>" in html and "<script" not in html


def test_pareto_panels_for_three_objectives(write_space):
    from autotune.reports.plot import pareto_figure
    from autotune.spaces import load_space

    objectives = {"accuracy": "maximize", "e2e_ms": "minimize", "size_mb": "minimize"}
    space = load_space(write_space({"objectives": objectives}), "cpu")
    candidates = [
        Candidate(n, {"accuracy": a, "e2e_ms": e, "size_mb": s}, {"accuracy >= 0.6": 0.6 - a})
        for n, (a, e, s) in enumerate([(0.7, 1.0, 3.0), (0.65, 0.8, 2.0), (0.5, 0.5, 1.0)])
    ]
    figure = pareto_figure(space, candidates, select(candidates, objectives, "accuracy"))
    labels = {(ax.get_xlabel(), ax.get_ylabel()) for ax in figure.axes}
    assert labels == {
        ("e2e_ms (minimize)", "accuracy (maximize)"),
        ("size_mb (minimize)", "accuracy (maximize)"),
        ("size_mb (minimize)", "e2e_ms (minimize)"),
    }
