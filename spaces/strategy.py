"""The space file's `strategy:` section: how a study spends its budget (sampler, precision
siblings, successive halving or the median rule, racing evaluation, failures)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from autotune.spaces.knobs import EXPORT_KNOBS, Strict

SAMPLERS = ("tpe", "nsga2", "gp", "random", "grid")


class RacingSection(Strict):
    """Racing evaluation (search/racing.py): a label-scoring candidate's accuracy is taken on
    these growing prefixes of the eval split first, and it stops after one of them once a
    finished trial clearly beats it; only candidates still in the race are scored on all."""

    stages: list[int] = Field(
        default_factory=lambda: [64, 256],
        min_length=1,
        description="growing eval-prefix sizes, each at least 6 (fewer examples can never "
        "separate two candidates: McNemar needs 6 discordant)",
    )

    @field_validator("stages")
    @classmethod
    def _growing(cls, value: list[int]) -> list[int]:
        if value[0] < 6 or any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"expected growing example counts of at least 6, got {value}")
        return value


class FidelitySection(Strict):
    """Successive halving on training steps (search/fidelity.py): a training runs in `rungs`
    parts, the last ending at the full step count and each earlier one `eta` times shorter than
    the next; at the end of each part only the best 1/eta by eval loss go on."""

    rungs: int = Field(3, ge=2, le=6, description="the parts a training runs in")
    eta: int = Field(
        3, ge=2, le=10, description="each part is this many times shorter than the next"
    )
    screen: int = Field(
        3,
        ge=1,
        description="the first rung ranks this many configurations before the best goes on "
        "(cheap to screen); on later rungs the best so far goes on at once, so that a first "
        "candidate finishes early",
    )
    stop: bool = Field(
        True,
        description="false: every training runs through all its rungs, nothing is stopped, and "
        "the median rule's checkpoint losses are recorded too (the ground truth of "
        "bench/search_efficiency.py)",
    )
    brackets: int = Field(
        1,
        ge=1,
        le=6,
        description="Hyperband's hedge against a first rung that ranks wrongly (a high learning "
        "rate leads early and loses at the end): up to `rungs` brackets; a configuration in "
        "bracket b is first judged at rung b + 1, among its bracket only (the last bracket trains "
        "every one to its end)",
    )

    @model_validator(mode="after")
    def _brackets_within_rungs(self) -> FidelitySection:
        if self.brackets > self.rungs:
            raise ValueError(f"expected brackets at most rungs ({self.rungs}), got {self.brackets}")
        return self


class StrategySection(Strict):
    """How the study spends its budget: sampler, precision siblings, early stopping, failures."""

    sampler: Literal[SAMPLERS] = Field("tpe", description="the Optuna sampler")
    expand: list[str] | None = Field(
        None,
        description="export knobs whose other values are queued as sibling trials each time a "
        "new adapter is trained (they reuse it); null: every export knob the space searches; "
        "[]: no siblings",
    )
    fidelity: FidelitySection | None = Field(
        default_factory=FidelitySection,
        description="multi-fidelity trainings (successive halving on the steps); null: every "
        "training runs to its end, and `prune` may stop hopeless ones by the median rule instead",
    )
    prune: bool = Field(
        True,
        description="without `fidelity`: stop a training whose eval loss at a checkpoint (from "
        "`prune_from` on) is worse than the median of earlier trainings at that checkpoint, once "
        "`prune_after` trainings completed",
    )
    checkpoints: int = Field(
        3, ge=1, le=20, description="evenly spaced checkpoints of a training's eval loss"
    )
    checkpoint_examples: int = Field(
        64,
        ge=4,
        description="the eval loss (at checkpoints and at the end of training) is taken on this "
        "many eval examples, a fixed stratified subset: enough to rank trainings, a fraction of "
        "the cost",
    )
    confirm: bool = Field(
        True,
        description="at the end of a study, time the top tier's candidates again in turns "
        "(A B C A B C ...) under one machine state, and pick on those figures (search/confirm.py)",
    )
    prune_from: int = Field(2, ge=1, description="the first checkpoint the median rule judges")
    prune_after: int = Field(
        3, ge=1, description="completed trainings needed before the median rule stops any"
    )
    max_failures: int = Field(
        5, ge=1, description="stop the study after this many failed trials in a row"
    )
    max_pruned: int = Field(
        20,
        ge=1,
        description="stop the study after this many pruned trials in a row (a sampler that keeps "
        "proposing what the pruning rule stops)",
    )
    max_retries: int = Field(
        2,
        ge=0,
        description="a trial whose process died (killed, out of memory) runs again at most this "
        'many times; then it stays failed, "gave up after N retries"',
    )
    racing: RacingSection | None = Field(
        default_factory=RacingSection,
        description="racing evaluation of label-scoring candidates; null: every candidate scored "
        "on all",
    )

    @field_validator("expand")
    @classmethod
    def _export_knobs(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in EXPORT_KNOBS:
                raise ValueError(f"expected export knobs among {EXPORT_KNOBS}, got {name!r}")
        return value
