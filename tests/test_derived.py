"""Figures derived from other measurements (search/derived.py), end to end on the tiny space."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.test_workflow import run_autotune

pytestmark = pytest.mark.slow


def test_a_constraint_on_quant_drop_measures_the_unquantised_twin(
    write_space, shared_cache, tmp_path
):
    """With no fp32 sibling to compare against, a space that judges quant_drop has the trial
    export and measure its fp32 twin itself; the drop is the twin's accuracy less its own."""
    changes = {
        "train": {"epochs": 0.5},
        "search": {"precision": "int4", "int4_block_size": 32, "int4_accuracy_level": 4},
        "latency": {"repeats": 3},
        "constraints": {"accuracy": ">= 0", "quant_drop": "<= 1"},
        "strategy": {"expand": [], "fidelity": None},  # the one trial trains to its end
    }
    out = tmp_path / "run"
    measures = shared_cache / "measure"
    before = set(measures.iterdir()) if measures.is_dir() else set()
    result = run_autotune(write_space(changes), out, shared_cache, "--trials", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    row = pd.read_csv(out / "trials.csv").iloc[0]
    assert row["precision"] == "int4" and row["feasible"]
    import optuna

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'study.db'}")
    known = {row["onnx_dir"], study.user_attrs["reference"]["onnx_dir"]}
    twins = []
    for folder in set(measures.iterdir()) - before:  # what this study measured
        measured = json.loads((folder / "measurement.json").read_text())
        if measured["model_dir"] not in known:
            twins.append(measured)
    assert len(twins) == 1, [t["model_dir"] for t in twins]
    summary = json.loads((Path(twins[0]["model_dir"]) / "autotune_export.json").read_text())
    assert set(summary["layers"]) == {"fp32"}  # the unquantised twin
    assert row["quant_drop"] == pytest.approx(twins[0]["metrics"]["accuracy"] - row["accuracy"])
