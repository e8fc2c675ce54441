"""Noticing a collapsed generator: one that says the same thing, nothing, or the prompt back.

A model that answers "-2" to every arithmetic question still scores on the rows whose answer is
-2, and a character-level metric still credits it for overlap, so a collapsed candidate can win a
study on its figure. This flags it from its predictions alone, whatever the metric.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from autotune.evaluators.text_metrics import normalise


@dataclass(frozen=True)
class Collapse:
    """Whether a candidate's predictions collapsed, why (one line, "" when not), and its most
    common prediction with the share of predictions it covers."""

    flagged: bool
    reason: str
    top: str
    top_share: float

    def to_json(self) -> dict[str, object]:
        return {
            "flagged": self.flagged,
            "reason": self.reason,
            "top": self.top,
            "top_share": self.top_share,
        }


def collapse_of(predictions: list[str], references: list[str], prompts: list[str]) -> Collapse:
    """Flag predictions that are mostly empty, mostly echoes of the prompt (non-empty once
    normalised, inside the normalised prompt, and not the reference), or mostly one string that
    is more than twice as common among the predictions as among the references (compared
    normalised): a balanced 4-label classifier answering one label 60% of the time is flagged;
    a data set whose references are 70% "yes" answered "yes" 70% of the time is not."""
    n = len(predictions)
    if len(references) != n or len(prompts) != n:
        raise ValueError(
            "predictions, references and prompts must pair up: "
            f"{n}, {len(references)}, {len(prompts)}"
        )
    if n == 0:
        return Collapse(flagged=False, reason="", top="", top_share=0.0)
    top, count = Counter(predictions).most_common(1)[0]
    top_share = count / n

    def flagged(reason: str) -> Collapse:
        return Collapse(flagged=True, reason=f"collapsed: {reason}", top=top, top_share=top_share)

    empty = sum(not p.strip() for p in predictions)
    if 2 * empty > n:
        return flagged(f"{empty} of {n} predictions are empty")
    echoes = sum(_echoes(p, r, q) for p, r, q in zip(predictions, references, prompts, strict=True))
    if 2 * echoes > n:
        return flagged(f"{echoes} of {n} predictions repeat the prompt")
    said = normalise(top)
    reference_share = sum(normalise(r) == said for r in references) / n
    if 2 * count > n and top_share > 2 * reference_share:
        return flagged(f"{count} of {n} predictions are {top!r}")
    return Collapse(flagged=False, reason="", top=top, top_share=top_share)


def _echoes(prediction: str, reference: str, prompt: str) -> bool:
    said = normalise(prediction)
    return bool(said) and said in normalise(prompt) and said != normalise(reference)
