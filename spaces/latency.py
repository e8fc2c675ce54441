"""The space file's `latency:` section: how generation latency is measured on an exported model,
and when a measurement is not trusted (`latency.noise`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from autotune.spaces.knobs import Strict
from autotune.spaces.metrics import STATS


class NoiseSection(Strict):
    """When a latency measurement is not trusted, and what is done about it
    (evaluators/machine_state.py): it is repeated, and flagged if it stays noisy."""

    max_cv: float = Field(
        0.3,
        gt=0,
        description="a ttft or decode coefficient of variation over the repeats above this is "
        "noisy (a quiet measurement of these models stays under about 0.25)",
    )
    max_other_cores: float = Field(
        0.25,
        ge=0,
        description="other processes keeping more than this many cores busy, on average, on the "
        "cores the measurement runs on: outside load",
    )
    max_steal: float = Field(
        0.05,
        ge=0,
        le=1,
        description="time the hypervisor gave this machine's CPUs to others, as a share of the "
        "CPU time, above which a measurement is noisy",
    )
    retries: int = Field(
        2, ge=0, le=10, description="how many times a noisy measurement is taken again"
    )
    quiet_wait_s: float = Field(
        10, ge=0, description="seconds of waiting for the outside load to end, before each retry"
    )


class LatencySection(Strict):
    """How generation latency is measured on the exported model."""

    prompt_tokens: int = Field(64, ge=1, description="tokens of the timed prompt")
    new_tokens: int = Field(8, ge=2, description="tokens generated after it")
    warmup: int = Field(2, ge=0, description="untimed runs first")
    repeats: int = Field(10, ge=3, description="timed runs (at least, with `stable`)")
    stable: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="repeat (at least `repeats`, at most `max_repeats`) until the 95% confidence "
        "intervals of the ttft and decode medians are within this fraction of them; null: "
        "exactly `repeats`",
    )
    max_repeats: int = Field(300, ge=3, description="the most timed runs with `stable`")
    stat: Literal[STATS] = Field(
        "p50", description="the statistic a latency metric means when a space names no other"
    )
    threads: int = Field(1, ge=1, description="CPU threads the measured model runs on")
    noise: NoiseSection = Field(
        default_factory=NoiseSection, description="when a measurement is not trusted"
    )

    @model_validator(mode="after")
    def _repeat_bounds(self) -> LatencySection:
        if self.max_repeats < self.repeats:
            raise ValueError("expected max_repeats >= repeats")
        return self
