"""Collapse detection on predictions shaped like the issue's failed study and its near misses."""

from __future__ import annotations

from autotune.evaluators.collapse import collapse_of


def questions(n: int) -> list[str]:
    return [f"<|user|>\nWhat is {i} minus {i + 2}?<|end|>\n<|assistant|>\n" for i in range(n)]


def test_one_answer_to_every_question_is_flagged() -> None:
    prompts = questions(240)
    references = [f"{i - (i + 2) * (i % 3)}" for i in range(240)]  # mostly different answers
    result = collapse_of(["-2\n<|end|>"] * 240, references, prompts)
    assert result.flagged
    assert "'-2\\n<|end|>'" in result.reason
    assert "240 of 240" in result.reason
    assert result.top == "-2\n<|end|>"
    assert result.top_share == 1.0


def test_diverse_answers_are_not_flagged() -> None:
    prompts = questions(100)
    references = [str(-2 - i % 7) for i in range(100)]
    predictions = [str(-2 - i % 5) for i in range(100)]  # often wrong, never collapsed
    result = collapse_of(predictions, references, prompts)
    assert not result.flagged
    assert result.reason == ""
    assert result.top_share == 0.2


def test_mostly_empty_is_flagged() -> None:
    predictions = [""] * 6 + [" \n"] * 5 + ["4"] * 9
    result = collapse_of(predictions, ["4"] * 20, questions(20))
    assert result.flagged
    assert "11 of 20 predictions are empty" in result.reason


def test_half_empty_is_not_flagged() -> None:
    predictions = [""] * 10 + [str(i) for i in range(10)]
    assert not collapse_of(predictions, [str(i) for i in range(20)], questions(20)).flagged


def test_echoing_the_prompt_is_flagged() -> None:
    prompts = [f"Translate to French: the cat number {i}" for i in range(10)]
    predictions = [f"The cat number {i}." for i in range(6)] + ["le chat"] * 4
    result = collapse_of(predictions, ["le chat"] * 10, prompts)
    assert result.flagged
    assert "6 of 10 predictions repeat the prompt" in result.reason


def test_an_answer_inside_the_prompt_that_is_right_is_no_echo() -> None:
    prompts = [f"Is {i} even? Answer yes or no." for i in range(10)]
    references = ["yes" if i % 2 == 0 else "no" for i in range(10)]
    result = collapse_of(list(references), references, prompts)
    assert not result.flagged


def test_imbalanced_references_answered_in_proportion_are_not_flagged() -> None:
    references = ["yes"] * 70 + ["no"] * 30
    predictions = ["yes"] * 60 + ["no"] * 10 + ["yes"] * 10 + ["no"] * 20
    result = collapse_of(predictions, references, [f"q{i}" for i in range(100)])
    assert not result.flagged
    assert (result.top, result.top_share) == ("yes", 0.7)


def test_balanced_classifier_stuck_on_one_label_is_flagged() -> None:
    labels = ["World", "Sports", "Business", "Sci/Tech"]
    references = [labels[i % 4] for i in range(100)]
    predictions = ["Sports"] * 60 + references[60:]
    result = collapse_of(predictions, references, [f"q{i}" for i in range(100)])
    assert result.flagged
    assert "'Sports'" in result.reason


def test_no_predictions_is_not_flagged() -> None:
    assert not collapse_of([], [], []).flagged
