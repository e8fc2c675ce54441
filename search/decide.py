"""The end of a study, decided in the search once: the confirmation round on the top tier, then
the pick (the rules: decisions/selection.py).

`decide` reads the study once and applies the rules to what it holds (the stored round
included); `conclude` first times the top tier again in turns when the space asks for it
(search/confirm.py), then makes the pick on the round's figures. The reports render a
`Decision`; they never select on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from autotune.decisions.candidate import Candidate, candidates, confirmed_candidates
from autotune.decisions.derived import with_quant_drop
from autotune.decisions.record import TrialRecord
from autotune.decisions.selection import Selection, select_confirmed
from autotune.search.confirm import confirm, confirmed
from autotune.search.events import StudyEvents
from autotune.search.record import Attr, read_trials, reference_record
from autotune.spaces import Space


@dataclass(frozen=True)
class Decision:
    """What the study decided, and everything it was decided from."""

    records: list[TrialRecord]  # every trial; quant_drop filled in from twins measured later
    candidates: list[Candidate]  # the completed trials, with their search-time figures
    confirmed: list[Candidate]  # the confirmation round's candidates, with its figures
    selection: Selection
    reference: TrialRecord | None  # the untrained base, measured like a candidate


def decide(study: optuna.Study, space: Space, target: str) -> Decision:
    """The study's pick from what it holds now (one read of the storage)."""
    records = with_quant_drop(read_trials(study), target, space.headline_metric())
    found = candidates(records, space)
    timed_again = confirmed_candidates(found, confirmed(study), space)
    prefer = space.preferred_objective()
    selection = select_confirmed(found, timed_again, space.objectives, prefer)
    return Decision(records, found, timed_again, selection, reference_record(study))


def top_tier(decision: Decision) -> list[int]:
    """The trial numbers of the top tier on the search-time figures (the tiers always are)."""
    tiers = decision.selection.tiers
    return sorted(c.number for c in tiers[0]) if tiers else []


def conclude(
    study: optuna.Study,
    space: Space,
    target: str,
    events: StudyEvents,
    again: bool = False,
) -> Decision:
    """The confirmation round on the top tier (unless the space turns it off; `again` replaces
    a stored round), then the pick on its figures."""
    decision = decide(study, space, target)
    if not (space.strategy.confirm or again):
        return decision
    numbers = top_tier(decision)
    if len(numbers) < 2:
        return decision
    if again:
        study.set_user_attr(Attr.CONFIRMATION, None)
    with events.step(f"confirmation round: trials {numbers} in turns"):
        round_ = confirm(study, space, target, numbers)
    timed_again = confirmed_candidates(decision.candidates, round_, space)
    prefer = space.preferred_objective()
    selection = select_confirmed(decision.candidates, timed_again, space.objectives, prefer)
    return Decision(
        decision.records, decision.candidates, timed_again, selection, decision.reference
    )
