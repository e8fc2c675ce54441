"""Successive halving's rules (asynchronous, as ASHA), over the study's typed records.

A training runs in `rungs` parts, each `eta` times longer than the one before, the last ending at
the full step count. At the end of each part but the last its eval loss is ranked among those of
every other training configuration that reached that rung: it goes on when it ranks within the
best max(1, n // eta) of the n, else it is paused there. A paused configuration is promoted
later, once enough worse ones reach its rung that it ranks within that share.

With `brackets` > 1 this is asynchronous Hyperband: each new configuration joins the bracket
furthest below its share (Hyperband's: bracket b gets ceil(R / (R - b) * eta^(R - 1 - b)) parts,
R the rungs; 9 : 5 : 3 for 3 rungs and eta 3), and is judged from its (b + 1)-th rung on, among
the configurations of its bracket only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from autotune.decisions.record import TrialRecord
from autotune.spaces.schema import FidelitySection


def rung_ends(total: int, fidelity: FidelitySection) -> list[int]:
    """The step each rung ends at: total / eta^(rungs - 1 - i), the last one `total` (fewer
    rungs when a short training cannot tell them apart)."""
    shares = [fidelity.eta ** (fidelity.rungs - 1 - i) for i in range(fidelity.rungs)]
    return sorted({max(1, math.ceil(total / share)) for share in shares})


def ranks_anything(trainings: float, fidelity: FidelitySection) -> bool:
    """Whether successive halving can stop a training of a space with `trainings` distinct
    training configurations: its first rung lets none go on before `screen` are ranked, and one
    configuration alone always ranks first. With fewer, every training would pause at the first
    rung and go on only when the sampler proposes it again (a trial spent on nothing), so the
    trainings run straight instead."""
    return trainings >= max(2, fidelity.screen)


def losses_at(
    records: Sequence[TrialRecord], rung: int, exclude: str = "", bracket: int = 0
) -> dict[str, float]:
    """The eval loss at `rung` of each training configuration of `bracket` that reached it (but
    `exclude`), by adapter key, from trials in any state."""
    losses: dict[str, float] = {}
    for record in records:
        info, key = record.rung, record.adapter_key
        if key and key != exclude and info and rung < len(info.losses) and info.bracket == bracket:
            losses[key] = info.losses[rung]
    return losses


def bracket_shares(fidelity: FidelitySection) -> list[int]:
    """Hyperband's configurations per bracket, bracket b judged from rung b + 1 on."""
    rungs = fidelity.rungs
    return [
        math.ceil(rungs / (rungs - b) * fidelity.eta ** (rungs - 1 - b))
        for b in range(fidelity.brackets)
    ]


def bracket_of(records: Sequence[TrialRecord], key: str, fidelity: FidelitySection) -> int:
    """The bracket of configuration `key`: the one an earlier trial of it recorded, else the
    bracket furthest below its share of the configurations placed so far (ties: the lower)."""
    placed: dict[str, int] = {}
    for record in records:
        if record.adapter_key and record.rung is not None:
            placed.setdefault(record.adapter_key, record.rung.bracket)
    if key in placed:
        return placed[key]
    shares = bracket_shares(fidelity)
    counts = [list(placed.values()).count(b) for b in range(len(shares))]
    wanted = [share / sum(shares) * (len(placed) + 1) for share in shares]
    return max(range(len(shares)), key=lambda b: (wanted[b] - counts[b], -b))


def quota(n: int, eta: int, screen: int = 1) -> int:
    """How many of the `n` configurations at a rung go on: the best 1/eta, at least one once
    `screen` configurations are there (none before)."""
    return max(1, n // eta) if n >= screen else 0


def ranking(loss: float, others: list[float], eta: int, screen: int = 1) -> tuple[int, int]:
    """(rank of `loss` among it and `others`, 0 the best; how many go on)."""
    return sum(other < loss for other in others), quota(len(others) + 1, eta, screen)


def screened(fidelity: FidelitySection, rung: int, bracket: int = 0) -> int:
    """How many configurations a rung ranks before any goes on: `screen` on the bracket's
    first."""
    return fidelity.screen if rung == bracket else 1


def pause_reason(
    records: Sequence[TrialRecord],
    key: str,
    loss: float,
    index: int,
    ends: Sequence[int],
    fidelity: FidelitySection,
    bracket: int,
) -> str | None:
    """Why configuration `key`, at eval loss `loss` at rung `index`, pauses there; None when it
    ranks within the share that goes on."""
    others = list(losses_at(records, index, exclude=key, bracket=bracket).values())
    rank, going_on = ranking(loss, others, fidelity.eta, screened(fidelity, index, bracket))
    if rank < going_on:
        return None
    return (
        f"paused at rung {index + 1} of {len(ends)} (step {ends[index]} of {ends[-1]}): eval "
        f"loss {loss:.4f} ranks {rank + 1} of {len(others) + 1} there; "
        + (
            f"the best {going_on} go on"
            if going_on
            else f"none go on before {fidelity.screen} are ranked"
        )
    )


def due_for_promotion(
    records: Sequence[TrialRecord], fidelity: FidelitySection, idle: bool = False
) -> list[TrialRecord]:
    """The paused trials whose configuration now ranks within its rung's share, highest rung
    first (one per configuration; none already promoted, queued or taken further).

    `idle`: the last trial built nothing (the sampler proposed a repeat, or a paused
    configuration again). With no promotion due, the best paused configuration of the highest
    rung goes on anyway: in a finite space the bottom rung cannot grow, and the budget is
    better spent deeper on the best than on stopping."""
    key_of = {r.number: r.adapter_key for r in records}
    promoted = {r.promoted_from for r in records}
    pending = {
        key_of.get(r.promoted_from)
        for r in records
        if r.state in ("WAITING", "RUNNING") and r.promoted_from is not None
    }
    furthest: dict[str, int] = {}
    for record in records:
        if record.adapter_key and record.state != "FAIL":
            reached = record.rung.reached if record.rung else 0
            furthest[record.adapter_key] = max(furthest.get(record.adapter_key, 0), reached)
    due: dict[str, tuple[int, float, TrialRecord]] = {}  # one per configuration
    waiting: dict[str, tuple[int, float, TrialRecord]] = {}
    for record in records:
        info, key = record.rung, record.adapter_key
        if not record.paused or info is None or record.number in promoted:
            continue
        rung, bracket = info.reached - 1, info.bracket
        if key in pending or furthest.get(key, 0) > info.reached:
            continue  # queued already, or another trial of this configuration went on
        loss = info.losses[rung]
        others = list(losses_at(records, rung, exclude=key, bracket=bracket).values())
        rank, going_on = ranking(loss, others, fidelity.eta, screened(fidelity, rung, bracket))
        (due if rank < going_on else waiting)[key] = (rung, loss, record)
    if not due and idle and waiting:
        best = min(waiting.values(), key=lambda entry: (-entry[0], entry[1]))
        due = {best[2].adapter_key: best}
    return [record for _, _, record in sorted(due.values(), key=lambda e: (-e[0], e[1]))]
