"""The confirmation round: the top tier's candidates timed again, in turns, under one machine state.

Search-time latencies were taken minutes apart, each under whatever else the machine did then
(decode medians of identical exports differ by 15-25% across a study on these shared cores). At
the end of a study the candidates of the top tier are loaded together and timed in turns: one
repeat of A, one of B, one of C, then A again, so that a slow minute slows all of them alike.
Accuracy is deterministic and is not measured again. The figures are stored as the study
attribute `confirmation`; the reports show them beside the search-time figures, and the pick is
made on them (reports/results.py).
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from autotune.evaluators.latency import interleaved
from autotune.evaluators.machine_state import observe
from autotune.evaluators.measurement import latency_metrics
from autotune.evaluators.runtime import load_model
from autotune.search.record import Attr, read_trials
from autotune.spaces import Space


def confirmed(study: optuna.Study) -> dict[str, Any] | None:
    """The stored round: {"numbers", "metrics" (by trial number, as a string), "samples",
    "machine", "seconds"}, or None."""
    stored = study.user_attrs.get(Attr.CONFIRMATION)
    return stored if isinstance(stored, dict) else None


def remember_prompts(study: optuna.Study, prompts: list[str], space: Space) -> None:
    """Keep in the study the eval prompts a latency measurement's task requests use, so that a
    later round (`autotune select --confirm`) times the same requests without the data files."""
    used = prompts[: space.latency.warmup + space.latency.repeats]
    if study.user_attrs.get(Attr.LATENCY_PROMPTS) != used:
        study.set_user_attr(Attr.LATENCY_PROMPTS, used)


def confirm(
    study: optuna.Study, space: Space, target: str, numbers: list[int]
) -> dict[str, Any] | None:
    """Time the trials `numbers` in turns (their task requests on the study's latency prompts)
    and store the round; a round of the same trials already stored is kept. Fewer than two
    candidates: nothing to compare, no round."""
    numbers = sorted(set(numbers))
    known = confirmed(study)
    if known is not None and known.get("numbers") == numbers:
        return known
    if len(numbers) < 2:
        return None
    start = time.perf_counter()
    records = {r.number: r for r in read_trials(study)}
    settings = space.latency
    loaded = {n: load_model(records[n].onnx_dir, target, settings.threads) for n in numbers}
    prompts = list(study.user_attrs.get(Attr.LATENCY_PROMPTS) or [])
    with observe() as seen:
        samples = interleaved(loaded, prompts, settings)
    del loaded
    stored = {
        "numbers": numbers,
        "metrics": {str(n): latency_metrics(samples[n]) for n in numbers},
        "samples": {str(n): samples[n] for n in numbers},
        "machine": seen.state.to_json(),
        "seconds": round(time.perf_counter() - start, 3),
    }
    study.set_user_attr(Attr.CONFIRMATION, stored)
    return stored
