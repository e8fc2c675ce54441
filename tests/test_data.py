"""Templates, labels and the fixed stratified split."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from autotune.candidates.data import Example, load_dataset, stratified_split, template_fields
from autotune.spaces import SpaceError, load_space


def test_template_fields():
    assert template_fields("### Text: {phrase}\n### The tone is:\n") == ["phrase"]
    assert template_fields("{a} and {b}") == ["a", "b"]


def test_examples_render_the_reference_template(write_space):
    dataset = load_dataset(load_space(write_space(), "cpu"))
    example = dataset.train[0]
    assert example.prompt.startswith("### Text: ") and example.prompt.endswith(
        "\n### The tone is:\n"
    )
    assert example.completion in {"joy", "sadness", "fear", "surprise"}


def test_shipped_tone_data_is_balanced_varied_and_unique():
    from tests.conftest import DATA

    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    assert len(rows) >= 800
    counts = Counter(r["tone"] for r in rows)
    assert set(counts) == {"joy", "sadness", "fear", "surprise"}
    assert max(counts.values()) == min(counts.values())
    phrases = [r["phrase"].strip().lower() for r in rows]
    assert len(set(phrases)) == len(phrases)
    lengths = [len(p.split()) for p in phrases]
    assert min(lengths) <= 4 and max(lengths) >= 20


def test_split_is_stratified_disjoint_and_fixed():
    examples = [Example(f"p{i}", label) for label in "abcd" for i in range(50)]
    train, evaluation = stratified_split(examples, 0.2, seed=0)
    assert Counter(e.completion for e in evaluation) == {c: 10 for c in "abcd"}
    assert not set(train) & set(evaluation)
    assert len(train) + len(evaluation) == len(examples)
    assert stratified_split(list(reversed(examples)), 0.2, seed=0) == (train, evaluation)
    assert stratified_split(examples, 0.2, seed=1)[1] != evaluation


def test_template_field_missing_from_data(write_space):
    path = write_space({"data": {"prompt_template": "### Text: {sentence}\n"}})
    with pytest.raises(SpaceError, match="uses \\['sentence'\\]") as caught:
        load_dataset(load_space(path, "cpu"))
    assert caught.value.field == "data.prompt_template"


def test_completion_outside_labels(write_space):
    path = write_space({"data": {"labels": ["joy", "sadness", "fear"]}})
    with pytest.raises(SpaceError, match="surprise") as caught:
        load_dataset(load_space(path, "cpu"))
    assert caught.value.field == "data.labels"


def test_csv_data(write_space, tmp_path):
    csv = tmp_path / "tones.csv"
    csv.write_text(
        "phrase,tone\n"
        + "\n".join(f"phrase number {i},{'joy' if i % 2 else 'fear'}" for i in range(20))
    )
    path = write_space({"data": {"files": str(csv), "labels": ["joy", "fear"]}})
    dataset = load_dataset(load_space(path, "cpu"))
    assert len(dataset.train) == 16 and len(dataset.eval) == 4
