"""Failures inside trials are isolated: each ends as a FAIL with its reason, the study goes on."""

from __future__ import annotations

import pandas as pd
import pytest

from autotune import cli
from autotune.candidates import export

pytestmark = pytest.mark.slow


def test_nan_loss_and_export_error_fail_their_trials_only(
    write_space, shared_cache, tmp_path, monkeypatch
):
    # A grid of four trials: lora_alpha 1e15 makes the loss NaN within a few steps (a real
    # divergence), and an int8 export is made to fail the way a builder error does.
    # One epoch at 0.004: a quarter epoch answers one label for every row, and a collapsed
    # model is never selected.
    changes = {
        "train": {"epochs": 1},
        "search": {
            "lora_r": 8,
            "lora_alpha": {"choices": [16.0, 1.0e15]},
            "learning_rate": 0.004,
            "precision": {"choices": ["fp32", "int8"]},
            "int4_block_size": None,
            "int4_accuracy_level": None,
        },
        "constraints": {"accuracy": ">= 0", "e2e_ms": None},
        "latency": {"repeats": 3},
        "strategy": {"sampler": "grid", "expand": [], "prune": False, "fidelity": None},
    }
    real_export = export.export_onnx

    def export_or_fail(merged, params, out):
        if params.precision == "int8":
            raise RuntimeError("the model builder failed: unsupported quantisation (injected)")
        return real_export(merged, params, out)

    monkeypatch.setattr("autotune.search.stages.export_onnx", export_or_fail)
    out = tmp_path / "run"
    argv = ["--space", str(write_space(changes)), "--out", str(out), "--cache", str(shared_cache)]
    assert cli.main([*argv, "--trials", "4", "--quiet"]) == 0

    trials = pd.read_csv(out / "trials.csv").set_index(["lora_alpha", "precision"])
    assert len(trials) == 4  # the study ran every grid point
    assert trials.loc[(16.0, "fp32"), "state"] == "COMPLETE"
    assert trials.loc[(16.0, "int8"), "state"] == "FAIL"
    assert "builder failed" in trials.loc[(16.0, "int8"), "error"]
    for precision in ("fp32", "int8"):
        assert trials.loc[(1.0e15, precision), "state"] == "FAIL"
        assert "TrainingDiverged: loss became nan" in trials.loc[(1.0e15, precision), "error"]
    for number in trials[trials["state"] == "FAIL"]["number"]:
        assert (out / "trials" / str(number) / "error.log").read_text().startswith("Traceback")
    assert (out / "selected" / "selection.json").is_file()
