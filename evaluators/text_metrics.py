"""Per-example scores of generated text against its reference: exact match, ROUGE-L, chrF, BLEU.

Each is a per-example list so a space's figure is its mean (with a bootstrap interval) and two
candidates can be compared example by example (Wilcoxon). The scorers are the usual packages
(`rouge-score`, `sacrebleu`), built once per process, so figures match what others report.
"""

from __future__ import annotations

import re
import string
from functools import cache
from typing import Any

from autotune.errors import UsageError

TEXT_METRIC_NAMES = ("exact_match", "rouge_l", "chrf", "bleu")

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, no punctuation, no articles (a/an/the),
    whitespace squeezed, so "The Eiffel tower." matches "eiffel  Tower"."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


@cache
def _scorers() -> tuple[Any, Any, Any]:
    """ROUGE-L (Porter stemming, as the ROUGE papers do), chrF and sentence BLEU with the
    defaults of `sacrebleu.sentence_chrf` / `sentence_bleu` (exp smoothing, effective order),
    built once: constructing them per sentence costs more than scoring."""
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    return (
        rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True),
        CHRF(),
        BLEU(effective_order=True),
    )


def text_scores(predictions: list[str], references: list[str]) -> dict[str, list[float]]:
    """Per-example scores under every name of TEXT_METRIC_NAMES: exact_match 0/1 on normalised
    text, rouge_l F-measure 0..1, chrf and bleu 0..100."""
    if len(predictions) != len(references):
        raise ValueError(
            f"predictions and references must pair up: {len(predictions)} vs {len(references)}"
        )
    rouge, chrf, bleu = _scorers()
    scores: dict[str, list[float]] = {name: [] for name in TEXT_METRIC_NAMES}
    for prediction, reference in zip(predictions, references, strict=True):
        scores["exact_match"].append(float(normalise(prediction) == normalise(reference)))
        scores["rouge_l"].append(float(rouge.score(reference, prediction)["rougeL"].fmeasure))
        scores["chrf"].append(float(chrf.sentence_score(prediction, [reference]).score))
        scores["bleu"].append(float(bleu.sentence_score(prediction, [reference]).score))
    return scores


def check_text_metrics() -> None:
    """Load the scorers and score "a b" against itself, so a missing or broken package stops a
    study at `--dry-run` in one line rather than after its first training."""
    try:
        scores = text_scores(["a b"], ["a b"])
    except Exception as error:  # ImportError, or a broken install failing anywhere inside
        raise UsageError(
            f"generative metrics need rouge-score and sacrebleu: {type(error).__name__}: {error}"
        ) from None
    perfect = {"exact_match": 1.0, "rouge_l": 1.0, "chrf": 100.0, "bleu": 100.0}
    wrong = {n: s[0] for n, s in scores.items() if abs(s[0] - perfect[n]) > 1e-6}
    if wrong:
        raise UsageError(f"generative metrics score a text against itself as {wrong}, not perfect")
