"""The noise-aware tiers and the pick: which candidates the measurements can tell apart.

A point-estimate Pareto front drops a candidate over differences inside the noise (two exports of
one training, 0.012 apart on 592 examples, where one standard error is 0.019). Here tier 1 is the
feasible candidates no feasible candidate *beats* (noise-aware dominance, decisions/dominance.py);
tier 2 those only tier 1 beats; and so on. The pick: in tier 1, the candidates the tier's best on
the preferred objective does not beat there (its ties), then the smallest on disk (to two
significant figures), then the fastest (the first latency objective, else e2e_ms.p50), then the
earliest.

With a confirmation round (search/confirm.py) the tiers still come from every candidate's
search-time figures, and the pick is made among the round's candidates alone, on the round's
figures: timed together, their latencies compare with one another and with nothing else (loaded
side by side, small models run measurably slower than alone).

When no candidate meets every constraint, the closest one is the one with the least total
violation, each constraint's violations scaled by their spread over the candidates (so that units
do not matter).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from autotune.decisions.candidate import Candidate, Direction
from autotune.decisions.dominance import beats, better_by, paired_p_value, right_or_wrong
from autotune.evaluators.paired import mcnemar_exact
from autotune.spaces import LATENCY_METRICS, split_metric

Objectives = dict[str, Direction]


@dataclass(frozen=True)
class Separation:
    """Whether the pick and the runner-up on the preferred objective can be told apart, and if
    not, how many eval examples would (from their observed discordance)."""

    first: int
    second: int
    p_value: float
    examples_needed: int | None


@dataclass(frozen=True)
class Selection:
    """The chosen candidate, the feasible front it came from (the top tier), the reason in
    words; the tiers, the candidates tied with the best on the preferred objective, and whether
    the top two of those can be told apart."""

    chosen: Candidate | None
    front: list[Candidate]
    reason: str
    tiers: list[list[Candidate]] = field(default_factory=list)
    ties: list[Candidate] = field(default_factory=list)
    separation: Separation | None = None
    collapsed: tuple[int, ...] = ()  # trials left out: their predictions collapsed


def tiers(candidates: Sequence[Candidate], objectives: Objectives) -> list[list[Candidate]]:
    """Successive noise-aware fronts of `candidates`, best tier first."""
    left, found = list(candidates), []
    while left:
        tier = [c for c in left if not any(beats(o, c, objectives) for o in left if o is not c)]
        found.append(tier)
        left = [c for c in left if c not in tier]
    return found


def ties_with_best(
    tier: Sequence[Candidate], objectives: Objectives, prefer: str
) -> list[Candidate]:
    """The tier's best on `prefer` and every candidate it does not distinguishably beat there."""
    sign = 1 if objectives[prefer] == "minimize" else -1
    best = min(tier, key=lambda c: (sign * c.values[prefer], c.number))
    return [c for c in tier if c is best or not better_by(best, c, prefer, objectives[prefer])]


def pick_key(objectives: Objectives) -> Callable[[Candidate], tuple[float, float, int]]:
    """The pick rule among ties: smallest on disk, then fastest, then earliest."""
    speed = next((n for n in objectives if split_metric(n)[0] in LATENCY_METRICS), None)

    def key(c: Candidate) -> tuple[float, float, int]:
        inf = float("inf")
        fast = c.values[speed] if speed else c.figures.get("e2e_ms.p50", inf)
        # Sizes to two significant figures: a few bytes of graph metadata do not count.
        size = c.figures.get("size_mb", inf)
        return (float(f"{size:.2g}") if size != inf else inf, fast, c.number)

    return key


def separation(ties: Sequence[Candidate], objectives: Objectives, prefer: str) -> Separation | None:
    """The top two of the ties on `prefer`, compared on their per-example scores (how many
    examples would separate them is estimated for right/wrong scores only)."""
    figure = split_metric(prefer)[0]
    if len(ties) < 2:
        return None
    sign = 1 if objectives[prefer] == "minimize" else -1
    top, runner = sorted(ties, key=lambda c: (sign * c.values[prefer], c.number))[:2]
    p_value = paired_p_value(top, runner, figure)
    if p_value is None:
        return None
    x, y = top.evidence.scores[figure], runner.evidence.scores[figure]
    needed = None
    if right_or_wrong(x) and right_or_wrong(y):
        needed = mcnemar_exact([s == 1.0 for s in x], [s == 1.0 for s in y]).examples_to_separate
    return Separation(top.number, runner.number, p_value, needed)


def rank_front(front: Sequence[Candidate], objectives: Objectives, prefer: str) -> list[Candidate]:
    """`front` best first: by `prefer`, then the other objectives in order, then trial number."""
    order = [prefer] + [n for n in objectives if n != prefer]

    def key(c: Candidate) -> tuple[tuple[float, ...], int]:
        signed = (c.values[n] if objectives[n] == "minimize" else -c.values[n] for n in order)
        return tuple(signed), c.number

    return sorted(front, key=key)


def closest_candidate(candidates: Sequence[Candidate]) -> Candidate | None:
    """The candidate with the least total violation, each constraint scaled by its spread."""
    if not candidates:
        return None
    spread = {}
    for name in candidates[0].violations:
        values = [c.violations[name] for c in candidates]
        spread[name] = (max(values) - min(values)) or 1.0

    def missing(c: Candidate) -> float:
        return sum(max(v, 0) / spread[k] for k, v in c.violations.items())

    return min(candidates, key=lambda c: (missing(c), c.number))


def select(
    candidates: Sequence[Candidate],
    objectives: Objectives,
    prefer: str,
    pool: str = "",
) -> Selection:
    """The selection rule (the module's docstring); `chosen` is None when no candidate meets
    the constraints (constraints are judged on the point estimates)."""
    collapsed = tuple(c.number for c in candidates if is_collapsed(c))
    usable = [c for c in candidates if c.number not in collapsed]
    left_out = (
        f"; trials {', '.join(map(str, collapsed))} left out: their predictions collapsed "
        "(mostly one string, empty or echoes of the prompt)"
        if collapsed
        else ""
    )
    feasible = [c for c in usable if c.feasible]
    if not feasible and any(c.feasible for c in candidates):
        feasible = [c for c in candidates if c.feasible]  # all collapsed: the reason says so
        left_out = (
            "; every feasible trial collapsed (its predictions are mostly one string, empty or "
            "echoes of the prompt): the pick is among them and not fit to deploy as it is"
        )
    if not feasible:
        closest = closest_candidate(usable)
        reason = "no completed trial meets every constraint"
        if not usable and collapsed:
            reason = "every completed trial collapsed"
        if closest is not None:
            missed = ", ".join(
                f"{k} (off by {v:.4g})" for k, v in closest.violations.items() if v > 0
            )
            reason += f"; the closest is trial {closest.number}, which misses {missed}"
        return Selection(None, [], reason + left_out, collapsed=collapsed)
    ranked = tiers(feasible, objectives)
    pool = pool or f"{len(candidates)} completed, {len(feasible)} feasible"
    ties = ties_with_best(ranked[0], objectives, prefer)
    chosen = min(ties, key=pick_key(objectives))
    reason = (
        f"{len(ties)} of the {len(ranked[0])} candidates in the top tier cannot be told apart "
        f"from the best {prefer} ({objectives[prefer]}); the smallest on disk of them, then the "
        f"fastest ({pool})"
        if len(ties) > 1
        else f"distinguishably the best {prefer} ({objectives[prefer]}) in the top tier of "
        f"{len(ranked[0])} ({pool})"
    )
    found = separation(ties, objectives, prefer)
    return Selection(chosen, ranked[0], reason + left_out, ranked, ties, found, collapsed)


def is_collapsed(candidate: Candidate) -> bool:
    """Whether the candidate's predictions collapsed (evaluators/collapse.py): never picked."""
    return candidate.figures.get("collapsed", 0.0) >= 1.0


def select_confirmed(
    candidates: Sequence[Candidate],
    round_: Sequence[Candidate],
    objectives: Objectives,
    prefer: str,
) -> Selection:
    """`select` on the search-time `candidates`, then, when the confirmation round timed two or
    more (`round_`, with its figures), the pick and the top tier from the round alone."""
    searched = select(candidates, objectives, prefer)
    if len(round_) < 2:
        return searched
    numbers = ", ".join(str(c.number) for c in round_)
    pool = f"on the figures of the confirmation round, which timed trials {numbers} in turns"
    final = select(round_, objectives, prefer, pool)
    if final.chosen is None:
        return searched
    return Selection(
        final.chosen,
        final.front,
        final.reason,
        searched.tiers,
        final.ties,
        final.separation,
        searched.collapsed,
    )
