"""The quality figures a run is judged on, each under its own name (accuracy for a
classification, rouge_l or a custom module's figure for generations, nll, kl, ...), and the
trials whose predictions collapsed.

Reports, the model card, compare and the terminal summary read these instead of assuming
"accuracy": a generative run has none.
"""

from __future__ import annotations

from collections.abc import Iterable

from autotune.decisions.record import TrialRecord
from autotune.decisions.selection import Selection
from autotune.spaces import METRICS, Space, split_metric
from autotune.spaces.metrics import LOWER_IS_BETTER, QUALITY_METRICS, headline_metric

# Figures that are shares (0 to 1): their differences read best as points (x 100).
SHARES = ("accuracy", "macro_f1", "exact_match", "rouge_l", "top1_agree")


def headline(space: Space) -> str:
    """The space's headline quality figure (what gain_over_base is a difference of)."""
    return headline_metric(space.objectives, classification=bool(space.data.labels))


def is_quality(name: str) -> bool:
    """A quality figure: one of the vocabulary's, or a custom `evaluate` module's own name."""
    base = split_metric(name)[0]
    return base in QUALITY_METRICS or base not in METRICS


def quality_names(space: Space, metrics: Iterable[str]) -> list[str]:
    """The quality figures among `metrics` (names of one trial's figures), the headline first,
    then the space's objectives and constraints, then the vocabulary's order."""
    present = set(metrics)
    named = [c.metric for c in space.parsed_constraints()]
    wanted = [headline(space), *space.objectives, *named, *QUALITY_METRICS]
    return [
        n
        for n in dict.fromkeys(split_metric(w)[0] for w in wanted)
        if n in present and is_quality(n)
    ]


def difference_text(name: str, new: float, old: float) -> str:
    """`new` against `old` on the figure `name`, in words: 'accuracy +5.2 points',
    'nll -0.31 (lower is better)'."""
    gap = new - old
    if name in SHARES:
        return f"{name} {gap * 100:+.1f} points"
    lower = " (lower is better)" if name in LOWER_IS_BETTER else ""
    return f"{name} {gap:+.3g}{lower}"


def collapsed_trials(records: list[TrialRecord], selection: Selection) -> dict[int, str]:
    """Completed trials whose predictions collapsed (evaluators/collapse.py) -> why, in words
    ('collapsed: 240 of 240 predictions are ...'): those the selection left out
    (`Selection.collapsed`), and any whose `collapsed` figure is 1."""
    excluded = set(getattr(selection, "collapsed", ()) or ())
    found = {}
    for record in records:
        if not record.complete:
            continue
        if record.number in excluded or record.metrics.get("collapsed", 0.0) >= 1.0:
            reason = (record.measured.get("collapse") or {}).get("reason") or "collapsed"
            if not reason.startswith("collapsed"):
                reason = f"collapsed: {reason}"
            found[record.number] = reason
    return found


def collapse_lines(records: list[TrialRecord], selection: Selection) -> list[str]:
    """One sentence per collapsed trial: 'trial 3 not selected: collapsed: ...' (or, when every
    feasible trial collapsed and the pick is one of them, 'trial 3 selected although ...')."""
    chosen = selection.chosen.number if selection.chosen is not None else None
    return [
        f"trial {number} {'selected although' if number == chosen else 'not selected:'} {reason}"
        for number, reason in collapsed_trials(records, selection).items()
    ]
