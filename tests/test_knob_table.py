"""The knob table holds every knob's default once: a default changed there is the one a trial
trains with, the `train` section's and TrainParams', and the one the generated reference shows;
the committed reference is what the generator makes now."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import optuna
import pytest

from autotune.candidates.train import TrainParams
from autotune.search.params import suggest, train_params, with_defaults
from autotune.spaces import KNOBS, Derived, load_space
from autotune.spaces.knobs import TRAIN_KNOBS
from autotune.spaces.reference import render
from autotune.spaces.schema import TrainSection
from tests.conftest import REPO

REFERENCE = REPO / "docs" / "space-reference.md"


def set_default(monkeypatch: pytest.MonkeyPatch, name: str, default: object) -> None:
    monkeypatch.setitem(KNOBS, name, dataclasses.replace(KNOBS[name], default=default))


def knob_row(reference: str, name: str) -> str:
    return next(line for line in reference.splitlines() if line.startswith(f"| `{name}` | "))


def has_default(field: dataclasses.Field) -> bool:
    missing = dataclasses.MISSING
    return field.default is not missing or field.default_factory is not missing


def trial_training(space) -> TrainParams:
    """The adapter's parameters of a trial, as search/trial.py makes them."""
    trial = optuna.create_study().ask()
    return train_params(suggest(trial, space), space)


def test_a_changed_default_reaches_the_trial_and_the_reference(monkeypatch, write_space):
    space_file = write_space()
    space = load_space(space_file, "cpu")
    assert "lora_dropout" not in space.search and "warmup_ratio" not in space.search
    assert "warmup_ratio" not in space.train.model_fields_set
    before = trial_training(space)

    set_default(monkeypatch, "lora_dropout", 0.125)
    set_default(monkeypatch, "warmup_ratio", 0.0625)
    space = load_space(space_file, "cpu")
    training = trial_training(space)
    assert (training.lora_dropout, training.warmup_ratio) == (0.125, 0.0625)
    assert (before.lora_dropout, before.warmup_ratio) != (0.125, 0.0625)
    reference = render()
    assert "| `0.125` |" in knob_row(reference, "lora_dropout")
    assert "| `0.0625` |" in knob_row(reference, "warmup_ratio")  # the train section's row
    assert reference.count("`0.0625`") == 2  # and the knob's


def test_a_derived_default_is_computed_where_the_table_says(monkeypatch, write_space):
    space = load_space(write_space(), "cpu")
    assert "lora_alpha" not in space.search
    training = trial_training(space)
    assert training.lora_alpha == 2 * training.lora_r

    set_default(monkeypatch, "lora_alpha", Derived("3 * lora_r", lambda v: 3 * v["lora_r"]))
    training = trial_training(space)
    assert training.lora_alpha == 3 * training.lora_r
    assert "| `3 * lora_r` |" in knob_row(render(), "lora_alpha")


def test_every_default_is_read_from_the_table(monkeypatch, write_space):
    optional = [name for name, knob in KNOBS.items() if not knob.required and not knob.derived]
    marks = {name: object() for name in optional}
    for name, mark in marks.items():
        set_default(monkeypatch, name, mark)
    section = TrainSection()
    assert all(getattr(section, name) is marks[name] for name in TRAIN_KNOBS)
    params = TrainParams(
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        learning_rate=1e-3,
        epochs=1,
        batch_size=8,
        max_seq_len=64,
        target_modules=("q_proj",),
        seed=0,
    )
    given = {f.name for f in dataclasses.fields(TrainParams) if not has_default(f)}
    left = [name for name in TRAIN_KNOBS if name not in given]
    assert left and all(getattr(params, name) is marks[name] for name in left)
    space = load_space(write_space(), "cpu")
    values = with_defaults({"lora_r": 8}, space)
    fixed = set(space.train.model_fields_set) | set(space.search)
    assert {"lora_dropout", "int4_algo", "warmup_ratio"} <= set(optional) - fixed
    assert all(values[name] is marks[name] for name in optional if name not in fixed)


def test_the_committed_reference_is_the_generated_one():
    made = subprocess.run(
        [sys.executable, "-m", "autotune.spaces.reference"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    assert made == render()
    assert REFERENCE.read_text() == made, (
        "docs/space-reference.md is stale: python -m autotune.spaces.reference "
        "> docs/space-reference.md"
    )
