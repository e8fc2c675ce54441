"""A generative study end to end on the tiny base: what the model said is kept, and a collapsed
candidate is flagged and never picked silently.

The data are questions of spaces/data/qa.jsonl (its calendar, unit, sum and word-table kinds,
524 train and 64 eval examples) answered in one sentence. At learning rate 3e-3 (two epochs, one
cycle) the tiny base learns each kind's frame and its answers vary with the question (28
distinct answers to 64 questions, the commonest 10 times, ROUGE-L 0.24 against the untrained
base's 0.15); at 1e-1 the loss stays above 5 and the model says one string to 60 of the 64
questions ("wo I yesterday I yesterday ..."), as the issue's tiny base said "-2" to every
arithmetic question. (On other splits of these kinds, 1e-1 collapsed 3 times in 3, 3e-3 in none
of 2.) Nothing is mocked.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from autotune.candidates.data import load_dataset
from autotune.spaces import load_space
from tests.conftest import REPO, merge, tiny_dict
from tests.test_workflow import run_autotune

KINDS = ("weekday", "month", "units", "sum", "past", "plural", "opposite")
SANE, COLLAPSING = 3e-3, 1e-1


def test_the_shipped_qa_data_is_what_its_script_writes():
    script = REPO / "spaces" / "data" / "make_qa.py"
    spec = importlib.util.spec_from_file_location("make_qa", script)
    assert spec is not None and spec.loader is not None
    make_qa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_qa)
    rows = make_qa.rows()
    shipped = (REPO / "spaces" / "data" / "qa.jsonl").read_text().splitlines()
    assert shipped == [json.dumps(row, ensure_ascii=False) for row in rows]
    assert 600 <= len(rows) <= 1500
    assert len({row["question"] for row in rows}) == len(rows)  # no eval question is trained on
    assert all(4 <= len(row["answer"].split()) <= 9 for row in rows)  # sentences, not tokens


def test_the_qa_space_holds_out_unseen_questions_of_every_kind(tmp_path):
    """The shipped generative space's data section: every answer differs, so the split cannot
    be stratified by completion; it must still leave max_eval examples, none trained on, of
    every kind (not the first answers in alphabetical order)."""
    raw = yaml.safe_load((REPO / "spaces" / "smollm2-qa.yaml").read_text())
    raw["model"] = {"tiny": {}}  # the data section alone, without the GGUF package
    raw["data"]["files"] = str(REPO / "spaces" / "data" / "qa.jsonl")
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(raw))
    dataset = load_dataset(load_space(tmp_path / "space.yaml", "cpu"))
    assert len(dataset.eval) == raw["data"]["max_eval"]
    assert len(dataset.train) == raw["data"]["max_train"]
    assert not {e.prompt for e in dataset.eval} & {e.prompt for e in dataset.train}
    kind = {
        row["question"]: row["kind"]
        for row in map(json.loads, (REPO / "spaces" / "data" / "qa.jsonl").open())
    }
    assert {kind[e.prompt] for e in dataset.eval} == set(kind.values())


@pytest.fixture(scope="module")
def qa_space(tmp_path_factory):
    """write(learning_rate, name) -> a tiny generative space file with that learning rate, or
    searching those (every one once: the grid sampler)."""
    root = tmp_path_factory.mktemp("qa")
    rows = [json.loads(line) for line in (REPO / "spaces" / "data" / "qa.jsonl").open()]
    data = root / "qa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows if r["kind"] in KINDS))

    def write(learning_rate: float | list[float], name: str) -> Path:
        several = isinstance(learning_rate, list)
        grid, sampler = ({"choices": learning_rate}, "grid") if several else (learning_rate, "tpe")
        changes = {
            "name": "tiny-qa",
            "data": {
                "files": str(data),
                "prompt_template": "Q: {question}\nA: ",
                "completion_template": "{answer}",
                "labels": None,
                "max_eval": 64,
            },
            "train": {"epochs": 2},
            "search": {"lora_r": 16, "learning_rate": grid},
            "constraints": None,
            "select": {"prefer": "rouge_l"},
            "latency": {"repeats": 3, "warmup": 1},
            # each training to its end
            "strategy": {"sampler": sampler, "fidelity": None, "prune": False, "confirm": False},
        }
        path = root / name
        base = tiny_dict()  # its search ranges and objectives replaced, not merged
        base["search"] = {"precision": "fp32"}
        base["objectives"] = {"rouge_l": "maximize", "e2e_ms": "minimize"}
        path.write_text(yaml.safe_dump(merge(base, changes)))
        return path

    return write


def generations(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "generations.jsonl").read_text().splitlines()]
    assert rows, folder
    for row in rows:
        assert set(row) >= {"prompt", "reference", "prediction", "scores"}
        assert row["prompt"].startswith("Q: ") and row["reference"]
        assert {"exact_match", "rouge_l", "chrf", "bleu", "nll"} <= set(row["scores"])
    return rows


def answer_section(run: Path) -> str:
    """The report's answer: what was selected and why (reports/report.py)."""
    report = (run / "report.md").read_text()
    assert "## The answer" in report, report[:2000]
    return report.split("## The answer", 1)[1].split("\n## ", 1)[0]


@pytest.mark.slow
def test_a_collapsed_candidate_is_flagged_and_not_selected(qa_space, shared_cache, tmp_path):
    out = tmp_path / "run"
    result = run_autotune(qa_space([SANE, COLLAPSING], "both.yaml"), out, shared_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "trials.csv").set_index("number")
    assert list(table["state"]) == ["COMPLETE", "COMPLETE"]
    number = {lr: int(table.index[table["learning_rate"] == lr][0]) for lr in (SANE, COLLAPSING)}

    # (a) what every model said, with its per-example scores; the untrained base's too
    said = {lr: generations(out / "trials" / str(n)) for lr, n in number.items()}
    assert len(said[SANE]) == 64
    generations(out / "reference")
    collapsed = [row["prediction"] for row in said[COLLAPSING]]
    top = max(set(collapsed), key=collapsed.count)
    assert collapsed.count(top) > 32, collapsed
    sane = [row["prediction"] for row in said[SANE]]
    assert max(sane.count(p) for p in sane) <= 32, sane

    # (b) the collapsed trial is flagged in its metrics and the trials table
    for lr, flag in ((SANE, 0.0), (COLLAPSING, 1.0)):
        metrics = json.loads((out / "trials" / str(number[lr]) / "metrics.json").read_text())
        assert metrics["metrics"]["collapsed"] == flag, (lr, metrics["metrics"])
        assert table.loc[number[lr], "collapsed"] == flag
    # (c) it is not the one selected, and the report says why it was left out
    selection = json.loads((out / "selected" / "selection.json").read_text())
    assert selection["trial"] == number[SANE]
    said_first = answer_section(out)
    assert f"trial {number[COLLAPSING]}" in said_first and "collapsed" in said_first

    # Alone, the collapsed configuration (its adapter now cached) is still not picked silently.
    alone = tmp_path / "alone"
    result = run_autotune(qa_space(COLLAPSING, "alone.yaml"), alone, shared_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    picked = alone / "selected" / "selection.json"
    if picked.exists():
        assert "collapsed" in json.loads(picked.read_text())["reason"]
    assert "collapsed" in answer_section(alone)
