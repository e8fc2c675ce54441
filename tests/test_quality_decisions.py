"""Quality figures in the decisions: paired tests on per-example scores (McNemar for right or
wrong, Wilcoxon otherwise), derived figures on the headline figure, collapsed candidates left
out of the pick, and the space and metric checks that come before any training."""

from __future__ import annotations

import numpy as np
import pytest

from autotune.decisions.candidate import Candidate, Evidence
from autotune.decisions.derived import gain_over_base, quant_drop
from autotune.decisions.dominance import better_by, paired_p_value
from autotune.decisions.selection import select
from autotune.evaluators.metric_check import check_scoring
from autotune.spaces import SpaceError, load_space

# The tiny space made generative (a None deletes a key of the tiny space's).
GENERATIVE = {
    "data": {"labels": None},
    "objectives": {"accuracy": None, "rouge_l": "maximize"},
    "constraints": {"accuracy": None},
    "select": None,
}


def candidate(number: int, scores: dict[str, list[float]], **figures: float) -> Candidate:
    values = {name: float(np.mean(v)) for name, v in scores.items()}
    return Candidate(
        number=number,
        values=values,
        violations={},
        figures={**values, **figures},
        evidence=Evidence(scores=scores),
    )


def test_a_consistent_gain_in_per_example_scores_is_distinguishable_and_noise_is_not():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 200)
    better = candidate(0, {"rouge_l": list(base + 0.03)})
    worse = candidate(1, {"rouge_l": list(base)})
    noisy = candidate(2, {"rouge_l": list(base + rng.normal(0, 0.05, 200) + 0.002)})
    assert better_by(better, worse, "rouge_l", "maximize")
    assert not better_by(noisy, worse, "rouge_l", "maximize")
    # Lower is better for nll: the same rule, the other direction.
    low = candidate(3, {"nll": list(base)})
    high = candidate(4, {"nll": list(base + 0.1)})
    assert better_by(low, high, "nll", "minimize") and not better_by(high, low, "nll", "minimize")


def test_right_or_wrong_scores_take_mcnemar():
    right = [1.0] * 60 + [0.0] * 40
    wrong = [1.0] * 55 + [0.0] * 45
    a, b = candidate(0, {"exact_match": right}), candidate(1, {"exact_match": wrong})
    p = paired_p_value(a, b, "exact_match")
    assert p == pytest.approx(0.0625)  # 5 discordant examples, all one way: 2 / 2**5
    assert paired_p_value(a, candidate(2, {"exact_match": right[:50]}), "exact_match") is None


def test_derived_figures_are_oriented_so_that_gain_is_good_news():
    assert gain_over_base(0.7, 0.5, "rouge_l") == pytest.approx(0.2)
    assert gain_over_base(1.5, 2.0, "nll") == pytest.approx(0.5)  # lower nll is a gain
    assert quant_drop(1.5, 1.75, "nll") == pytest.approx(0.25)  # higher nll after quantising


def test_a_collapsed_candidate_is_never_picked_and_the_reason_says_so():
    collapsed = candidate(0, {"rouge_l": [0.9] * 10}, collapsed=1.0)
    sane = candidate(1, {"rouge_l": [0.5] * 10}, collapsed=0.0)
    chosen = select([collapsed, sane], {"rouge_l": "maximize"}, "rouge_l")
    assert chosen.chosen is sane and chosen.collapsed == (0,)
    assert "trials 0 left out: their predictions collapsed" in chosen.reason
    # Every feasible trial collapsed: the pick is among them, and the reason says it is unfit.
    alone = select([collapsed], {"rouge_l": "maximize"}, "rouge_l")
    assert alone.chosen is collapsed and alone.collapsed == (0,)
    assert "every feasible trial collapsed" in alone.reason and "not fit to deploy" in alone.reason


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"data": {"labels": None}}, "objectives.accuracy", "needs data.labels"),
        ({"objectives": {"rouge_l": "maximize"}, "select": None}, "objectives.rouge_l", "scores "),
        (
            {**GENERATIVE, "objectives": {"accuracy": None, "char_f1": "maximize"}},
            "objectives.char_f1",
            "expected",
        ),
    ],
)
def test_a_figure_the_space_cannot_measure_is_refused_at_load(
    write_space, changes, field, expected
):
    with pytest.raises(SpaceError) as caught:
        load_space(write_space(changes), "cpu")
    assert caught.value.field == field and expected in caught.value.message


def test_generative_spaces_take_text_likelihood_and_agreement_figures(write_space):
    changes = {
        **GENERATIVE,
        "objectives": {"accuracy": None, "chrf": "maximize", "nll": "minimize", "kl": "minimize"},
        "constraints": {"accuracy": None, "top1_agree": ">= 0.9"},
        "select": {"prefer": "chrf"},
    }
    space = load_space(write_space(changes), "cpu")
    assert space.headline_metric() == "chrf"
    assert check_scoring(space, ["a reference"]) == ()


def module(folder, body: str) -> str:
    folder.mkdir()
    (folder / f"{folder.name}.py").write_text(body)
    return folder.name


CHAR_F1 = """
import datasets
import evaluate

class CharF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="character overlap", citation="", inputs_description="",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return {"char_f1": sum(p == r for p, r in zip(predictions, references)) / len(references)}
"""


def test_a_custom_module_keeps_its_names_and_a_broken_one_is_one_line(write_space, tmp_path):
    good = module(tmp_path / "char_f1", CHAR_F1)
    changes = {
        **GENERATIVE,
        "data": {"labels": None, "metric": good},
        "objectives": {"accuracy": None, "char_f1": "maximize", "e2e_ms": "minimize"},
        "select": {"prefer": "char_f1"},
    }
    space = load_space(write_space(changes), "cpu")
    assert check_scoring(space, ["x", "y"]) == ("char_f1",)
    assert space.headline_metric() == "char_f1"

    renamed = {**changes, "objectives": {"accuracy": None, "char_f2": "maximize"}, "select": None}
    with pytest.raises(SpaceError) as caught:
        check_scoring(load_space(write_space(renamed), "cpu"), ["x"])
    assert caught.value.field == "objectives.char_f2" and "['char_f1']" in caught.value.message

    broken = module(tmp_path / "broken", "import a_package_that_is_not_installed\n")
    space = load_space(write_space({**changes, "data": {"labels": None, "metric": broken}}), "cpu")
    with pytest.raises(SpaceError) as caught:
        check_scoring(space, ["x"])
    message = str(caught.value)
    assert caught.value.field == "data.metric" and "\n" not in message
    assert "a_package_that_is_not_installed" in message


def test_dry_run_of_a_broken_metric_module_is_exit_2_and_one_line(write_space, tmp_path, capsys):
    from autotune.cli import main

    broken = module(tmp_path / "broken_metric", "import a_package_that_is_not_installed\n")
    changes = {**GENERATIVE, "data": {"labels": None, "metric": broken}}
    space = write_space(changes)
    code = main(["--space", str(space), "--target", "cpu", "--dry-run", "--out", str(tmp_path)])
    lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(lines) == 1
    assert "data.metric" in lines[0] and "a_package_that_is_not_installed" in lines[0]
