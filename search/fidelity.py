"""Successive halving on training steps (asynchronous, as ASHA), decided from the study's storage.

Optuna's pruners cannot run in a multi-objective study (`Trial.report` raises there), so the
study does it itself. A training runs in `rungs` parts, each `eta` times longer than the one
before, the last ending at the full step count. At the end of each part but the last its eval
loss is ranked among those of every other training configuration that reached that rung, read
from the study's storage (so every worker sees the same rungs): it goes on when it ranks within
the best max(1, n // eta) of the n, else its trial stops, PRUNED and paused at that rung.

A paused configuration is promoted later, once enough worse ones reach its rung that it ranks
within that share: `promote_paused` queues a trial with its parameters, which continues from the
rung's checkpoint. Each rung's checkpoint (the adapter with its optimiser and schedule state,
candidates/train_state.py) is a `rung` entry of the stage cache, so a continuation after a crash
or on another worker resumes from it; the last rung is the `adapter` entry itself, under the key a
straight training has: a training run in parts is the same training (candidates/train.py).

With `brackets` > 1 this is asynchronous Hyperband: each new configuration joins the bracket
furthest below its share (Hyperband's: bracket b gets ceil(R / (R - b) * eta^(R - 1 - b)) parts,
R the rungs; 9 : 5 : 3 for 3 rungs and eta 3), and is judged from its (b + 1)-th rung on, among
the configurations of its bracket only. The aggressive bracket screens many cheaply; the others
hedge against a first rung that ranks wrongly, the last training every one to its end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from autotune.candidates.cache import digest
from autotune.candidates.train import TrainResult, load_train_result
from autotune.search.record import Attr
from autotune.search.workers.trial_access import stored_trial
from autotune.spaces.schema import FidelitySection

State = optuna.trial.TrialState
# Builds one part of a training into `out`: (out, the step it ends at or None, the checkpoint
# it continues from or None).
TrainPart = Callable[[Path, int | None, Path | None], None]
CURVE_POINTS = 200  # the most training-loss points a trial keeps


def rung_ends(total: int, fidelity: FidelitySection) -> list[int]:
    """The step each rung ends at: total / eta^(rungs - 1 - i), the last one `total` (fewer
    rungs when a short training cannot tell them apart)."""
    shares = [fidelity.eta ** (fidelity.rungs - 1 - i) for i in range(fidelity.rungs)]
    return sorted({max(1, math.ceil(total / share)) for share in shares})


def rung_key(adapter: str, end: int) -> str:
    return digest({"adapter": adapter, "rung_end": end})


def rung_losses(study: optuna.Study, rung: int, exclude: str = "") -> dict[str, float]:
    """The eval loss at `rung` of each training configuration that reached it (but `exclude`),
    by adapter key, from every trial of the study in any state."""
    return losses_at(study.get_trials(deepcopy=False), rung, exclude)


def losses_at(
    trials: list[optuna.trial.FrozenTrial], rung: int, exclude: str = "", bracket: int = 0
) -> dict[str, float]:
    """`rung_losses` over trials already read from the storage, of one bracket's
    configurations."""
    losses: dict[str, float] = {}
    for trial in trials:
        key = trial.user_attrs.get(Attr.ADAPTER_KEY)
        info = trial.user_attrs.get(Attr.RUNG) or {}
        reached = info.get("losses") or []
        if key and key != exclude and rung < len(reached) and info.get("bracket", 0) == bracket:
            losses[key] = reached[rung]
    return losses


def bracket_shares(fidelity: FidelitySection) -> list[int]:
    """Hyperband's configurations per bracket, bracket b judged from rung b + 1 on."""
    rungs = fidelity.rungs
    return [
        math.ceil(rungs / (rungs - b) * fidelity.eta ** (rungs - 1 - b))
        for b in range(fidelity.brackets)
    ]


def bracket_of(trials: list[optuna.trial.FrozenTrial], key: str, fidelity: FidelitySection) -> int:
    """The bracket of configuration `key`: the one an earlier trial of it recorded, else the
    bracket furthest below its share of the configurations placed so far (ties: the lower)."""
    placed: dict[str, int] = {}
    for trial in trials:
        info, other = trial.user_attrs.get(Attr.RUNG) or {}, trial.user_attrs.get(Attr.ADAPTER_KEY)
        if other and info:
            placed.setdefault(other, info.get("bracket", 0))
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


def loss_curve(result: TrainResult) -> dict[str, list[list[float]]]:
    """The training loss per step (thinned to at most CURVE_POINTS) and the eval losses."""
    every = max(1, math.ceil(len(result.train_losses) / CURVE_POINTS))
    train = [[step + 1, loss] for step, loss in enumerate(result.train_losses)]
    kept = train[::every] + ([train[-1]] if train and (len(train) - 1) % every else [])
    return {"train": kept, "eval": [[step, loss] for step, loss in result.eval_losses]}


def train_in_rungs(
    trial: optuna.Trial,
    key: str,
    total: int,
    fidelity: FidelitySection,
    build: Callable[[str, str, Callable[[Path], None]], Path],
    train_part: TrainPart,
    settled: bool,
    promoted_through: int = 0,
) -> Path:
    """The adapter, trained rung by rung; raises optuna.TrialPruned when the trial is paused.

    `build(stage, key, make)` is the stage cache's get_or_build. A `settled` configuration (a
    sibling's, whose training had finished when it was queued, or one a completed trial used)
    is not judged again, nor a promoted one on the `promoted_through` rungs its promotion
    decided. Every rung is judged even when its checkpoint is cached: the cache decides nothing.
    """
    ends = rung_ends(total, fidelity)
    bracket = 0  # one bracket: plain successive halving, nothing to read
    if fidelity.brackets > 1:
        bracket = bracket_of(trial.study.get_trials(deepcopy=False), key, fidelity)
    info: dict[str, Any] = {"reached": 0, "of": len(ends), "steps": 0, "losses": [], "stopped": ""}
    info.update(ends=ends, bracket=bracket)
    trial.set_user_attr(Attr.RUNG, dict(info))  # the bracket, for a retry and other workers
    previous: Path | None = None
    for index, end in enumerate(ends):
        last = index == len(ends) - 1
        stage, entry = ("adapter", key) if last else ("rung", rung_key(key, end))

        def part(out: Path, stop: int | None = None if last else end, resume=previous) -> None:
            train_part(out, stop, resume)

        path = build(stage, entry, part)
        result = load_train_result(path)
        info.update(reached=index + 1, steps=end, losses=[*info["losses"], result.eval_loss])
        trial.set_user_attr(Attr.RUNG, dict(info))  # in the storage: other workers rank by it
        trial.set_user_attr(Attr.LOSS_CURVE, loss_curve(result))
        if last:
            return path
        if fidelity.stop and not settled and index >= max(promoted_through, bracket):
            trials = trial.study.get_trials(deepcopy=False)
            others = list(losses_at(trials, index, exclude=key, bracket=bracket).values())
            rank, going_on = ranking(
                result.eval_loss, others, fidelity.eta, screened(fidelity, index, bracket)
            )
            if rank >= going_on:
                info["stopped"] = (
                    f"paused at rung {index + 1} of {len(ends)} (step {end} of {total}): eval "
                    f"loss {result.eval_loss:.4f} ranks {rank + 1} of {len(others) + 1} there; "
                    + (
                        f"the best {going_on} go on"
                        if going_on
                        else f"none go on before {fidelity.screen} are ranked"
                    )
                )
                trial.set_user_attr(Attr.RUNG, dict(info))
                raise optuna.TrialPruned(info["stopped"])
        previous = path
    raise AssertionError("unreachable: the last rung returns")


def promoted_through(study: optuna.Study, trial: optuna.Trial) -> int:
    """The rungs a promoted trial's promotion decided (0 for any other trial)."""
    paused = trial.user_attrs.get(Attr.PROMOTED_FROM)
    if paused is None:
        return 0
    stored = stored_trial(study, paused)  # one trial read, not a copy of the whole study
    return (stored.user_attrs.get(Attr.RUNG) or {}).get("reached", 0)


def proposed_again(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a pruned trial brought nothing new: a repeat of a completed configuration, or a
    configuration an earlier trial had already taken to a rung (not a promotion)."""
    if trial.state != State.PRUNED or Attr.PROMOTED_FROM in trial.user_attrs:
        return False
    if (trial.user_attrs.get(Attr.PRUNED) or "").startswith("a repeat of trial"):
        return True
    key = trial.user_attrs.get(Attr.ADAPTER_KEY)
    return bool(key) and any(
        t.number < trial.number and t.user_attrs.get(Attr.ADAPTER_KEY) == key
        for t in study.get_trials(deepcopy=False)
    )


def promote_paused(study: optuna.Study, fidelity: FidelitySection, idle: bool = False) -> list[int]:
    """Queue a continuation of each paused configuration that now ranks within its rung's
    share, highest rung first; the numbers of the paused trials promoted.

    `idle`: the last trial built nothing (the sampler proposed a repeat, or a paused
    configuration again). With no promotion due, the best paused configuration of the highest
    rung goes on anyway: in a finite space the bottom rung cannot grow, and the budget is
    better spent deeper on the best than on stopping."""
    trials = study.get_trials(deepcopy=False)
    key_of = {t.number: t.user_attrs.get(Attr.ADAPTER_KEY) for t in trials}
    promoted = {t.user_attrs.get(Attr.PROMOTED_FROM) for t in trials}
    pending = {
        key_of.get(t.user_attrs.get(Attr.PROMOTED_FROM))
        for t in trials
        if t.state in (State.WAITING, State.RUNNING) and Attr.PROMOTED_FROM in t.user_attrs
    }
    furthest: dict[str, int] = {}
    for trial in trials:
        key = trial.user_attrs.get(Attr.ADAPTER_KEY)
        if key and trial.state != State.FAIL:
            reached = (trial.user_attrs.get(Attr.RUNG) or {}).get("reached", 0)
            furthest[key] = max(furthest.get(key, 0), reached)
    due: dict[str, tuple[int, float, optuna.trial.FrozenTrial]] = {}  # one per configuration
    waiting: dict[str, tuple[int, float, optuna.trial.FrozenTrial]] = {}
    for trial in trials:
        info, key = trial.user_attrs.get(Attr.RUNG) or {}, trial.user_attrs.get(Attr.ADAPTER_KEY)
        if trial.state != State.PRUNED or not info.get("stopped") or trial.number in promoted:
            continue
        rung, bracket = info["reached"] - 1, info.get("bracket", 0)
        if key in pending or furthest.get(key, 0) > info["reached"]:
            continue  # queued already, or another trial of this configuration went on
        loss = info["losses"][rung]
        others = list(losses_at(trials, rung, exclude=key, bracket=bracket).values())
        rank, going_on = ranking(loss, others, fidelity.eta, screened(fidelity, rung, bracket))
        (due if rank < going_on else waiting)[key] = (rung, loss, trial)
    if not due and idle and waiting:
        best = min(waiting.values(), key=lambda entry: (-entry[0], entry[1]))
        due = {best[2].user_attrs[Attr.ADAPTER_KEY]: best}
    chosen = [trial for _, _, trial in sorted(due.values(), key=lambda e: (-e[0], e[1]))]
    for trial in chosen:
        study.enqueue_trial(trial.params, user_attrs={Attr.PROMOTED_FROM: trial.number})
    return [trial.number for trial in chosen]
