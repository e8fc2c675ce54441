"""The noise-aware front and pick: which candidates the measurements can tell apart.

A point-estimate Pareto front drops a candidate over differences inside the noise (two exports of
one training, 0.012 apart on 592 examples, where one standard error is 0.019). Here candidate A
*beats* B when A is at least as good on every objective (point estimates) and distinguishably
better on at least one, judged per objective by the strongest evidence both have:
- accuracy, gain_over_base, quant_drop (per-example correctness on the same eval examples): the
  exact McNemar test. A difference against a fixed reference is a paired accuracy difference;
  quant_drop across two trainings also carries the noise of their unquantised references, which
  this does not count;
- latency figures (the repeats): a two-sided Mann-Whitney rank test, and a shift of at least
  `LATENCY_MIN_EFFECT` of the slower median: on shared cores two measurements of one model taken
  minutes apart drift by a few percent, which a rank test on 30 repeats calls significant;
- any other figure with a 95% interval (macro_f1): intervals that do not overlap;
- figures without noise (size_mb): any difference.
All at the 5% level (evaluators/paired.py).

Tiers: tier 1 is the feasible candidates no feasible candidate beats (the noise-aware front); tier
2 those only tier 1 beats; and so on. The pick: in tier 1, the candidates the tier's best on the
preferred objective does not beat there (its ties), then the smallest on disk (to two significant
figures), then the fastest (the first latency objective, else e2e_ms.p50), then the earliest.

With a confirmation round (search/confirm.py) the tiers still come from every candidate's
search-time figures, and the pick is made among the round's candidates alone, on the round's
figures: timed together, their latencies compare with one another and with nothing else (loaded
side by side, small models run measurably slower than alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autotune.evaluators.paired import intervals_overlap, mcnemar_exact, rank_test
from autotune.reports.pareto import Candidate, Direction, Selection, closest_candidate
from autotune.spaces import LATENCY_METRICS, split_metric

PAIRED_ACCURACY = ("accuracy", "gain_over_base", "quant_drop")
LATENCY_MIN_EFFECT = 0.03


def better_by(a: Candidate, b: Candidate, name: str, direction: Direction) -> bool:
    """Whether `a` is distinguishably better than `b` on objective `name`."""
    x, y = a.values[name], b.values[name]
    if not (x < y if direction == "minimize" else x > y):
        return False
    first, second = a.evidence, b.evidence
    base, _ = split_metric(name)
    if base in PAIRED_ACCURACY and first.correct and len(first.correct) == len(second.correct):
        return mcnemar_exact(first.correct, second.correct).distinguishable
    if base in LATENCY_METRICS and base in first.samples and base in second.samples:
        test = rank_test(first.samples[base], second.samples[base])
        return test.distinguishable and abs(test.shift) >= LATENCY_MIN_EFFECT * max(abs(x), abs(y))
    if name in first.intervals and name in second.intervals:
        return not intervals_overlap(first.intervals[name], second.intervals[name])
    return True


def beats(a: Candidate, b: Candidate, objectives: dict[str, Direction]) -> bool:
    """At least as good everywhere (point estimates) and distinguishably better somewhere."""
    for name, direction in objectives.items():
        x, y = a.values[name], b.values[name]
        if x > y if direction == "minimize" else x < y:
            return False
    return any(better_by(a, b, name, d) for name, d in objectives.items())


def tiers(
    candidates: Sequence[Candidate], objectives: dict[str, Direction]
) -> list[list[Candidate]]:
    """Successive noise-aware fronts of `candidates`, best tier first."""
    left, found = list(candidates), []
    while left:
        tier = [c for c in left if not any(beats(o, c, objectives) for o in left if o is not c)]
        found.append(tier)
        left = [c for c in left if c not in tier]
    return found


def ties_with_best(
    tier: Sequence[Candidate], objectives: dict[str, Direction], prefer: str
) -> list[Candidate]:
    """The tier's best on `prefer` and every candidate it does not distinguishably beat there."""
    sign = 1 if objectives[prefer] == "minimize" else -1
    best = min(tier, key=lambda c: (sign * c.values[prefer], c.number))
    return [c for c in tier if c is best or not better_by(best, c, prefer, objectives[prefer])]


def pick_key(objectives: dict[str, Direction]):
    """The pick rule among ties: smallest on disk, then fastest, then earliest."""
    speed = next((n for n in objectives if split_metric(n)[0] in LATENCY_METRICS), None)

    def key(c: Candidate) -> tuple[float, float, int]:
        inf = float("inf")
        fast = c.values[speed] if speed else c.figures.get("e2e_ms.p50", inf)
        # Sizes to two significant figures: a few bytes of graph metadata do not count.
        size = c.figures.get("size_mb", inf)
        return (float(f"{size:.2g}") if size != inf else inf, fast, c.number)

    return key


@dataclass(frozen=True)
class Separation:
    """Whether the pick and the runner-up on the preferred objective can be told apart, and if
    not, how many eval examples would (from their observed discordance)."""

    first: int
    second: int
    p_value: float
    examples_needed: int | None


def separation(
    ties: Sequence[Candidate], objectives: dict[str, Direction], prefer: str
) -> Separation | None:
    """The top two of the ties on `prefer`, compared on per-example correctness."""
    if split_metric(prefer)[0] not in PAIRED_ACCURACY or len(ties) < 2:
        return None
    sign = 1 if objectives[prefer] == "minimize" else -1
    top, runner = sorted(ties, key=lambda c: (sign * c.values[prefer], c.number))[:2]
    if not top.evidence.correct or len(top.evidence.correct) != len(runner.evidence.correct):
        return None
    test = mcnemar_exact(top.evidence.correct, runner.evidence.correct)
    return Separation(top.number, runner.number, test.p_value, test.examples_to_separate)


def select(
    candidates: Sequence[Candidate],
    objectives: dict[str, Direction],
    prefer: str,
    pool: str = "",
) -> Selection:
    """The selection rule (the module's docstring); `chosen` is None when no candidate meets
    the constraints (constraints are judged on the point estimates)."""
    feasible = [c for c in candidates if c.feasible]
    if not feasible:
        closest = closest_candidate(candidates)
        reason = "no completed trial meets every constraint"
        if closest is not None:
            missed = ", ".join(
                f"{k} (off by {v:.4g})" for k, v in closest.violations.items() if v > 0
            )
            reason += f"; the closest is trial {closest.number}, which misses {missed}"
        return Selection(None, [], reason)
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
    return Selection(chosen, ranked[0], reason, ranked, ties, separation(ties, objectives, prefer))


def select_confirmed(
    candidates: Sequence[Candidate],
    round_: Sequence[Candidate],
    objectives: dict[str, Direction],
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
        final.chosen, final.front, final.reason, searched.tiers, final.ties, final.separation
    )
