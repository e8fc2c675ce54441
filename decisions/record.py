"""The trial record: one trial of a study as the decision rules and the reports see it, typed.

search/record.py converts Optuna trials to and from these records (user attributes); nothing
here knows Optuna. How a trial ended early is a `Verdict` kind, never read back from the words
of its reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """Why a trial ended PRUNED: the kinds the search decides on."""

    REPEAT = "repeat"  # the sampler proposed a completed configuration again; its figures stand
    PAUSED = "paused"  # successive halving paused its training at a rung
    MEDIAN = "median"  # the median rule stopped its training at a checkpoint
    JUDGED = "judged"  # its configuration was stopped before; stopped again without training
    RACED = "raced"  # racing stopped its measurement: a finished trial dominates it
    SURPLUS = "surplus"  # not run: other workers' trials filled the budget


@dataclass(frozen=True)
class Rung:
    """How far a training run by successive halving got: rungs reached of `of`, the step it
    trained to, the eval loss at each rung reached, why it stopped ('' when it did not), its
    Hyperband bracket and the step each rung ends at."""

    reached: int = 0
    of: int = 0
    steps: int = 0
    losses: tuple[float, ...] = ()
    stopped: str = ""
    bracket: int = 0
    ends: tuple[int, ...] = ()

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None) -> Rung | None:
        if not stored:
            return None
        return cls(
            reached=int(stored.get("reached", 0)),
            of=int(stored.get("of", 0)),
            steps=int(stored.get("steps", 0)),
            losses=tuple(stored.get("losses") or ()),
            stopped=str(stored.get("stopped") or ""),
            bracket=int(stored.get("bracket", 0)),
            ends=tuple(stored.get("ends") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        stored = asdict(self)
        return {**stored, "losses": list(self.losses), "ends": list(self.ends)}


@dataclass(frozen=True)
class Raced:
    """Racing stopped the trial's measurement after `examples` of `of` eval examples: trial
    `dominated_by` dominated it, as `reason` says."""

    examples: int
    of: int
    dominated_by: int
    reason: str

    @classmethod
    def from_json(cls, stored: dict[str, Any] | None) -> Raced | None:
        if not stored:
            return None
        return cls(
            int(stored["examples"]),
            int(stored["of"]),
            int(stored["dominated_by"]),
            str(stored.get("reason", "")),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrialRecord:
    """One trial as autotune sees it."""

    number: int
    state: str  # COMPLETE, PRUNED, FAIL, RUNNING, WAITING
    params: dict[str, Any] = field(default_factory=dict)  # every knob's value
    suggested: dict[str, Any] = field(default_factory=dict)  # the sampled (or queued) knobs
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    onnx_dir: str = ""
    measured: dict[str, Any] = field(default_factory=dict)
    constraints: dict[str, float] = field(default_factory=dict)  # constraint -> violation
    reason: str = ""  # why it failed or was pruned, in words
    verdict: Verdict | None = None  # why it was pruned, as a kind the search decides on
    sibling_of: int | None = None
    retry_of: int | None = None
    promoted_from: int | None = None  # the paused trial whose training this one continues
    queued: bool = False  # queued on purpose (sibling, retry, promotion), not sampled
    worker: str = ""
    adapter_key: str = ""  # the training's cache key: siblings and repeats share one training
    loss_curve: dict[str, list[list[float]]] = field(default_factory=dict)  # train, eval
    checkpoint_losses: tuple[float, ...] = ()  # the median rule's eval losses
    rung: Rung | None = None  # successive halving: how far it trained
    raced: Raced | None = None  # racing: why its measurement stopped

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE"

    @property
    def pruned(self) -> bool:
        return self.state == "PRUNED"

    @property
    def feasible(self) -> bool | None:
        """Whether a completed trial met every constraint (None for other trials)."""
        if not self.complete:
            return None
        return all(v <= 0 for v in self.constraints.values())

    @property
    def paused(self) -> bool:
        """Paused at a rung by successive halving (it may be promoted later)."""
        return self.pruned and self.rung is not None and bool(self.rung.stopped)
