"""The reference's likelihood and the agreement with the unquantised twin
(evaluators/likelihood.py), and the per-example scores of accuracy (evaluators/accuracy.py): the
arithmetic by hand, then on real exports of the tiny base."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autotune.evaluators.accuracy import generation_result
from autotune.evaluators.label_scoring import sequence_scores
from autotune.evaluators.likelihood import (
    Likelihood,
    LikelihoodMeter,
    TopK,
    _top_k_exact,
    lumped_kl,
    position_figures,
    top_k,
)
from autotune.evaluators.measurement import likelihood_metrics


def log_softmax64(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def full_kl(p_logits: np.ndarray, q_logits: np.ndarray) -> np.ndarray:
    p, q = log_softmax64(p_logits), log_softmax64(q_logits)
    return (np.exp(p) * (p - q)).sum(axis=-1)


# --------------------------------------------------------------------------- arithmetic


def test_nll_is_minus_the_label_score_per_token():
    rng = np.random.default_rng(1)
    sequence = [3, 1, 4, 1, 5, 9, 2]  # a 4-token prompt, then a 3-token completion
    logits = rng.normal(size=(len(sequence) - 1, 10)).astype(np.float32) * 4
    meter = LikelihoodMeter()
    meter.add(logits, sequence, 4)
    (score,) = sequence_scores(logits[None], [4], [sequence[4:]])
    assert meter.figures.nll[0] == pytest.approx(-score / 3, rel=1e-5)
    assert meter.figures.tokens == [3] and meter.figures.kl is None
    with pytest.raises(ValueError, match="logit rows"):
        meter.add(logits[:3], sequence, 4)


def test_log_probs_stay_finite_on_extreme_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-3e38, 0.0, 3e38]], dtype=np.float32)
    lse, top, target = position_figures(logits, np.array([0, 1]))
    assert np.isfinite(lse).all() and list(top) == [0, 2]
    assert target[0] == pytest.approx(0.0) and target[1] < -1e30


def test_top_k_finds_what_a_full_sort_finds():
    rng = np.random.default_rng(2)
    logits = (rng.standard_normal((12, 49152)) * 3).astype(np.float32)
    logits[3] = 0.0  # a flat row: every logit ties, the cut lets them all through
    logits[5, : 4 * 32 : 32] = 50.0  # a row the sample misleads: 4 pass its cut, not k
    logits[5, 7] = 60.0
    lse = position_figures(logits, np.zeros(12, dtype=np.int64))[0]
    ids, log_probs = top_k(logits, lse, 32)
    exact_ids, exact_log_probs = _top_k_exact(logits, lse, 32)
    assert np.array_equal(log_probs, exact_log_probs)
    untied = [row for row in range(12) if row != 3]
    assert np.array_equal(ids[untied, 5:], exact_ids[untied, 5:])  # 5: past row 5's tie
    assert ids[5, 0] == 7 and set(ids[5, 1:5]) == {0, 32, 64, 96}
    assert (np.diff(log_probs, axis=-1) <= 0).all()


def test_lumped_kl_is_exact_with_every_token_and_a_lower_bound_with_fewer():
    rng = np.random.default_rng(3)
    p_logits = rng.normal(size=(20, 50)) * 2
    q_logits = p_logits + rng.normal(size=(20, 50)) * 0.5
    exact = full_kl(p_logits, q_logits)
    p, q = log_softmax64(p_logits), log_softmax64(q_logits)
    for k, check in ((50, "equal"), (8, "below"), (1, "below")):
        ids = np.argsort(-p, axis=-1)[:, :k]
        lumped = lumped_kl(np.take_along_axis(p, ids, -1), np.take_along_axis(q, ids, -1))
        if check == "equal":
            assert lumped == pytest.approx(exact, abs=1e-9)
        else:
            assert (lumped <= exact + 1e-12).all() and (lumped >= 0).all()
    assert lumped_kl(p[:, :5], p[:, :5]) == pytest.approx(np.zeros(20), abs=1e-12)


def test_a_meter_against_its_own_topk_and_against_another_model():
    rng = np.random.default_rng(4)
    vocab, sequences = 300, [[1, 2, 3, 4, 5], [9, 8, 7], [5, 5, 5, 5, 5, 5, 5]]
    twin_logits = [rng.normal(size=(len(s) - 1, vocab)).astype(np.float32) * 3 for s in sequences]
    twin = LikelihoodMeter(keep_topk=True, k=16)
    for logits, sequence in zip(twin_logits, sequences, strict=True):
        twin.add(logits, sequence, 2)
    topk = twin.topk()
    assert topk is not None and topk.examples == 3 and topk.k == 16
    assert list(topk.offsets) == [0, 4, 6, 12]
    same = LikelihoodMeter(twin=topk)
    other = LikelihoodMeter(twin=topk)
    for logits, sequence in zip(twin_logits, sequences, strict=True):
        same.add(logits, sequence, 2)
        noisy = logits + rng.normal(size=logits.shape).astype(np.float32)
        other.add(noisy, sequence, 2)
    assert same.figures.kl == pytest.approx([0.0] * 3, abs=1e-6)
    assert same.figures.top1_agree == [1.0] * 3 and same.topk() is None
    assert other.figures.kl is not None and other.figures.top1_agree is not None
    assert all(kl > 0.05 for kl in other.figures.kl)
    assert all(0 <= agree < 1 for agree in other.figures.top1_agree)
    # and the lumped figure stays under the full KL of the whole vocabulary, close to it
    logits = twin_logits[0]
    noisy = logits + rng.normal(size=logits.shape).astype(np.float32)
    bounded = LikelihoodMeter(twin=topk)
    bounded.add(noisy, sequences[0], 2)
    assert bounded.figures.kl is not None
    assert (
        0.5 * full_kl(logits, noisy).mean() < bounded.figures.kl[0] <= full_kl(logits, noisy).mean()
    )
    wrong = LikelihoodMeter(twin=topk)
    with pytest.raises(ValueError, match="other tokens"):
        wrong.add(twin_logits[0], [1, 2, 3, 4, 6], 2)


def test_topk_round_trips_through_one_file(tmp_path):
    rng = np.random.default_rng(5)
    rows = [
        (rng.integers(0, 99, (n, 4)), rng.normal(size=(n, 4)), rng.integers(0, 99, n))
        for n in (3, 1, 5)
    ]
    topk = TopK.of_rows(rows, 4)
    topk.save(tmp_path / "topk.npz")
    loaded = TopK.load(tmp_path / "topk.npz")
    for name in ("ids", "log_probs", "targets", "offsets"):
        assert np.array_equal(getattr(loaded, name), getattr(topk, name))
    assert loaded.ids.dtype == np.int32 and loaded.log_probs.dtype == np.float32
    ids, _, targets = loaded.example(2)
    assert np.array_equal(ids, rows[2][0]) and np.array_equal(targets, rows[2][2])
    empty = TopK.of_rows([], 4)
    assert empty.examples == 0 and empty.ids.shape == (0, 4)


def test_likelihood_metrics_are_means_with_intervals():
    figures = Likelihood(
        nll=[1.0, 2.0, 3.0], tokens=[2, 2, 2], kl=[0.1, 0.3, 0.2], top1_agree=[1, 0.5, 0.75]
    )
    metrics = likelihood_metrics(figures)
    assert metrics["nll"] == pytest.approx(2.0) and metrics["perplexity"] == pytest.approx(
        math.e**2
    )
    assert metrics["nll.lo"] <= 2.0 <= metrics["nll.hi"]
    assert metrics["perplexity.lo"] == pytest.approx(math.exp(metrics["nll.lo"]))
    assert metrics["kl"] == pytest.approx(0.2) and metrics["top1_agree"] == pytest.approx(0.75)
    assert "kl" not in likelihood_metrics(Likelihood(nll=[1.0], tokens=[1]))
    assert figures.to_json()["tokens"] == [2, 2, 2]


def test_generations_are_scored_per_example_by_every_text_metric():
    result = generation_result(
        ["The Eiffel tower.", "blue", ""], ["eiffel  Tower", "red", "x"], "exact_match"
    )
    assert result.correct == [True, False, False] and result.accuracy == pytest.approx(1 / 3)
    assert set(result.scores) == {"exact_match", "rouge_l", "chrf", "bleu"}
    assert result.scores["exact_match"] == [1.0, 0.0, 0.0]
    means = result.means()
    assert means["rouge_l"] == pytest.approx(np.mean(result.scores["rouge_l"]))
    assert "accuracy" not in means and set(result.intervals(None)) == set(result.scores)
    written = result.to_json()
    assert written["correct"] == "100" and written["predictions"][0] == "The Eiffel tower."
    assert written["scores"]["exact_match"] == [1.0, 0.0, 0.0]


CHARACTER_MODULE = """
import datasets
import evaluate


class CharacterOverlap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="", citation="", inputs_description="",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        pairs = zip(predictions, references)
        shares = [len(set(p) & set(r)) / max(1, len(set(r))) for p, r in pairs]
        chars = float(len("".join(predictions)))
        return {"char_overlap": sum(shares) / len(shares), "corpus_chars": chars}
"""


def test_a_custom_module_keeps_its_own_names(tmp_path):
    folder = tmp_path / "char_overlap"
    folder.mkdir()
    (folder / "char_overlap.py").write_text(CHARACTER_MODULE)
    result = generation_result(["abc", "xyz"], ["abd", "xyz"], str(folder))
    assert "accuracy" not in result.means()
    assert result.means()["char_overlap"] == pytest.approx((2 / 3 + 1) / 2)
    assert result.scores["char_overlap"] == pytest.approx([2 / 3, 1.0])
    assert result.correct == [False, True] and "exact_match" in result.scores
    intervals = result.intervals(None)
    assert "char_overlap" in intervals  # a mean of its per-example scores
    assert "corpus_chars" not in intervals  # not one: 6 characters in all, not a mean of 3s
    assert result.means()["corpus_chars"] == 6.0


def test_classification_scores_right_and_wrong():
    from autotune.evaluators.accuracy import classification_result

    result = classification_result(["a", "b", "a"], ["a", "a", "a"], ["a", "b"])
    assert result.scores == {"accuracy": [1.0, 0.0, 1.0]} and result.correct == [True, False, True]
    assert set(result.means()) == {"accuracy", "macro_f1"}
    assert set(result.intervals(["a", "b"])) == {"accuracy", "macro_f1"}


# --------------------------------------------------------------------------- real exports


@pytest.fixture(scope="module")
def exports(tiny, tmp_path_factory):
    """The tiny base exported at fp32, at int4, and at fp32 with a pruned LM head."""
    from autotune.candidates.export import ExportParams, export_onnx

    _, _, base = tiny
    root = tmp_path_factory.mktemp("likelihood")
    folders = {}
    for name, params in {
        "fp32": ExportParams("fp32", "cpu"),
        "int4": ExportParams("int4", "cpu"),
        "pruned": ExportParams("fp32", "cpu", prune_lm_head=True),
    }.items():
        (root / name).mkdir()
        export_onnx(base.path, params, root / name)
        folders[name] = root / name
    return folders


SETTINGS = {"prompt_tokens": 16, "new_tokens": 2, "warmup": 1, "repeats": 3, "threads": 1}


@pytest.mark.slow
def test_nll_on_a_real_model_is_the_label_score_per_token(tiny, exports):
    from autotune.evaluators.label_scoring import encode_labels, label_scores
    from autotune.evaluators.measurement import benchmark
    from autotune.evaluators.runtime import load_model, special_ids
    from autotune.spaces import LatencySection

    _, dataset, _ = tiny
    examples = dataset.eval[:12]
    result = benchmark(
        exports["fp32"],
        "cpu",
        LatencySection(**SETTINGS),
        examples,
        dataset.labels,
        label_texts=dataset.label_texts,
    )
    assert result.likelihood is not None and len(result.likelihood.nll) == 12
    loaded = load_model(exports["fp32"], "cpu", 1)
    eos, _ = special_ids(exports["fp32"])
    tokens = encode_labels(loaded.tokenizer, dataset.labels, eos, dataset.label_texts)
    for example, nll, count in zip(
        examples, result.likelihood.nll, result.likelihood.tokens, strict=True
    ):
        reference = tokens[dataset.labels.index(example.completion.strip())]
        (score,) = label_scores(loaded.model, loaded.encode(example.prompt), [reference])
        assert count == len(reference) and nll == pytest.approx(-score / count, rel=1e-4)
    metrics = result.metrics
    assert metrics["nll"] == pytest.approx(np.mean(result.likelihood.nll))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["nll"]))
    assert "kl" not in metrics and metrics["collapsed"] in (0.0, 1.0)
    written = result.to_json()
    assert written["likelihood"]["nll"] == result.likelihood.nll
    assert set(written["collapse"]) == {"flagged", "reason", "top", "top_share"}
    assert written["accuracy"]["scores"]["accuracy"] == [float(c) for c in result.accuracy.correct]


@pytest.mark.slow
def test_agreement_with_the_twin_on_real_exports(tiny, exports, tmp_path):
    from autotune.evaluators.measurement import benchmark
    from autotune.spaces import LatencySection

    _, dataset, _ = tiny
    examples, settings = dataset.eval[:24], LatencySection(**SETTINGS)

    def measure(folder, **likelihood):
        return benchmark(
            folder,
            "cpu",
            settings,
            examples,
            dataset.labels,
            label_texts=dataset.label_texts,
            **likelihood,
        )

    twin = measure(exports["fp32"], keep_topk=True)
    assert twin.topk is not None and twin.topk.examples == 24
    twin.topk.save(tmp_path / "topk.npz")
    saved = TopK.load(tmp_path / "topk.npz")
    itself = measure(exports["fp32"], twin=saved)
    assert itself.metrics["kl"] == pytest.approx(0.0, abs=1e-5)
    assert itself.metrics["top1_agree"] == 1.0 and itself.topk is None
    assert itself.accuracy is not None and twin.accuracy is not None
    assert itself.accuracy.predictions == twin.accuracy.predictions
    quantised = measure(exports["int4"], twin=saved)
    assert quantised.likelihood is not None and quantised.likelihood.kl is not None
    assert quantised.metrics["kl"] > 0.001 and min(quantised.likelihood.kl) >= 0
    assert quantised.metrics["kl.lo"] <= quantised.metrics["kl"] <= quantised.metrics["kl.hi"]
    assert quantised.metrics["top1_agree"] < 1.0
    assert quantised.to_json()["likelihood"]["kl"] == quantised.likelihood.kl
    pruned = measure(exports["pruned"], twin=saved)  # last-position logits: token by token
    assert pruned.likelihood is not None and twin.likelihood is not None
    assert pruned.likelihood.nll == pytest.approx(twin.likelihood.nll, rel=1e-4, abs=1e-5)
    assert pruned.metrics["kl"] == pytest.approx(0.0, abs=1e-4)
    assert pruned.accuracy is not None and pruned.accuracy.predictions == twin.accuracy.predictions


@pytest.mark.slow
def test_generations_and_their_likelihood(tiny, exports):
    """Without labels: the teacher-forced pass first, then the generation from the cached
    prompt, which says what a generation from scratch says; the reference's nll is the one
    label scoring measures (the completion is the label's text)."""
    from autotune.evaluators.generation import generate_greedy
    from autotune.evaluators.measurement import benchmark
    from autotune.evaluators.runtime import load_model
    from autotune.spaces import LatencySection

    _, dataset, _ = tiny
    examples, settings = dataset.eval[:8], LatencySection(**SETTINGS)
    generated = benchmark(exports["fp32"], "cpu", settings, examples, None, keep_topk=True)
    labelled = benchmark(
        exports["fp32"], "cpu", settings, examples, dataset.labels, label_texts=dataset.label_texts
    )
    assert generated.accuracy is not None and generated.likelihood is not None
    assert labelled.likelihood is not None
    assert all(
        dataset.label_texts.get(e.completion.strip(), e.completion) == e.completion
        for e in examples
    )
    assert generated.likelihood.nll == pytest.approx(labelled.likelihood.nll, rel=1e-5)
    loaded = load_model(exports["fp32"], "cpu", 1)
    longest = max(len(loaded.encode(e.completion.strip())) for e in examples)
    fresh = generate_greedy(loaded.model, loaded.tokenizer, examples, longest + 2)
    assert generated.accuracy.predictions == fresh
    metrics = generated.metrics
    assert {"exact_match", "rouge_l", "chrf", "bleu", "nll", "collapsed"} <= set(metrics)
    assert "accuracy" not in metrics and "rouge_l.lo" in metrics
    assert generated.topk is not None and generated.topk.examples == 8


@pytest.mark.slow
def test_a_stopped_race_covers_its_prefix_and_keeps_no_topk(tiny, exports):
    from autotune.evaluators.measurement import benchmark
    from autotune.spaces import LatencySection

    _, dataset, _ = tiny
    stopped = benchmark(
        exports["fp32"],
        "cpu",
        LatencySection(**SETTINGS),
        dataset.eval[:30],
        dataset.labels,
        label_texts=dataset.label_texts,
        stages=[10],
        stop=lambda n, correct, figures: "enough",
        keep_topk=True,
    )
    assert stopped.stopped == "enough" and stopped.likelihood is not None
    assert len(stopped.likelihood.nll) == 10 and stopped.topk is None
    assert not {"nll", "perplexity", "collapsed"} & set(stopped.metrics)
    assert len(stopped.to_json()["likelihood"]["nll"]) == 10
