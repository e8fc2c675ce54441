"""Generative text scores with the real rouge-score and sacrebleu scorers."""

from __future__ import annotations

import pytest

from autotune.evaluators.text_metrics import (
    TEXT_METRIC_NAMES,
    check_text_metrics,
    normalise,
    text_scores,
)

REFERENCE = "The Eiffel Tower stands in Paris, the capital of France."
CLOSE = "The Eiffel Tower stands in Paris, capital of France."
FAR = "A tower stands somewhere in Europe."
UNRELATED = "Bananas are yellow."
PERFECT = {"exact_match": 1.0, "rouge_l": 1.0, "chrf": 100.0, "bleu": 100.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Eiffel Tower.", "eiffel tower"),
        ("  an   apple,  a pear!  ", "apple pear"),
        ("Theory of the atom", "theory of atom"),  # only whole-word articles go
        ("-2\n<|end|>", "2 end"),
        ("", ""),
        ("...", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_exact_match_is_on_normalised_text() -> None:
    scores = text_scores(["the Eiffel  tower!", "Eiffel Towers"], ["Eiffel Tower", "Eiffel Tower"])
    assert scores["exact_match"] == [1.0, 0.0]


def test_every_name_scored_per_example() -> None:
    scores = text_scores([CLOSE, FAR, UNRELATED], [REFERENCE] * 3)
    assert tuple(scores) == TEXT_METRIC_NAMES
    assert all(len(values) == 3 for values in scores.values())


@pytest.mark.parametrize("name", ["rouge_l", "chrf", "bleu"])
def test_closer_prediction_scores_higher(name: str) -> None:
    close, far, unrelated = text_scores([CLOSE, FAR, UNRELATED], [REFERENCE] * 3)[name]
    assert close > far > unrelated


def test_identical_text_scores_perfect() -> None:
    scores = text_scores([REFERENCE], [REFERENCE])
    for name, perfect in PERFECT.items():
        assert scores[name][0] == pytest.approx(perfect), name


def test_empty_prediction_scores_zero() -> None:
    scores = text_scores([""], [REFERENCE])
    assert {name: values[0] for name, values in scores.items()} == dict.fromkeys(PERFECT, 0.0)


def test_unpaired_lists_raise() -> None:
    with pytest.raises(ValueError, match="1 vs 2"):
        text_scores(["a"], ["a", "b"])


def test_check_text_metrics_passes() -> None:
    check_text_metrics()
