"""The reference's likelihood under an exported model, and its agreement with the unquantised twin.

One teacher-forced pass per eval example over `prompt + reference completion + EOS` gives the
logits of every position. From them, per example:
- `nll`: the mean negative log-probability (nats) of the completion's tokens and EOS;
- with the unquantised twin's `TopK`: `kl`, the mean over every position of KL(twin || model),
  and `top1_agree`, the share of positions whose most likely token is the twin's.
The model that is its own quantised siblings' twin keeps its `TopK` instead.

Cost: the log-softmax never materialises: each row needs its max, one float32 `exp` and sum
(a numerically stable logsumexp) and a few gathers, a few ms per example on a 49k vocabulary
(a float64 log-softmax of every row cost 93 ms). Label scoring and greedy generation make this
pass their own prompt pass (evaluators/accuracy.py), so the model runs about as often as before.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Top tokens kept per position of the twin. The lumped KL is a lower bound of the full one: on a
# SmolLM2 training's int4 export (bench/quant_agreement.py --check-k 32, 32 examples) the top 32
# held 0.88 of the twin's mass and the lumped KL read 0.51 nats/token against the full 0.61
# (k 8: 0.44, k 128: 0.56). It ranks exports (the paired tests compare one k with itself), it
# is not the full figure. Each position costs k * 8 bytes (about 2 MB for 256 examples
# of 30 tokens) and one top-k search (`top_k`, ~0.06 ms a position on a 49k vocabulary).
DEFAULT_K = 32


@dataclass(frozen=True)
class TopK:
    """Per eval example, the unquantised twin's `k` most likely tokens and their log-probs at
    each teacher-forced position (the logits predicting tokens 1..L-1 of the example's sequence).

    KL(P || Q) of the twin P from a model Q is taken over the twin's top k and the rest lumped
    into one outcome:
        KL ≈ Σ_{top k of P} p (log p − log q) + r_P (log r_P − log r_Q),
    with r_P = 1 − Σ p over the top k and r_Q = 1 − Σ q over the same tokens. It is the KL of
    both distributions coarsened onto the same k + 1 outcomes, so by the data-processing
    inequality a lower bound of the full KL, tight when P's tail is small. Storing the tail
    lumped keeps the twin's file small and its scoring one gather per position.

    Ragged over examples: rows are concatenated and `offsets[i]:offsets[i + 1]` are example i's.
    Within a row the tokens are sorted most likely first, so column 0 is the twin's top-1.
    """

    ids: np.ndarray  # (positions, k) int32
    log_probs: np.ndarray  # (positions, k) float32
    targets: np.ndarray  # (positions,) int32: the token each position predicts
    offsets: np.ndarray  # (examples + 1,) int64

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    @property
    def examples(self) -> int:
        return len(self.offsets) - 1

    def example(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, log_probs, targets) of example `index`'s positions."""
        rows = slice(int(self.offsets[index]), int(self.offsets[index + 1]))
        return self.ids[rows], self.log_probs[rows], self.targets[rows]

    @classmethod
    def of_rows(cls, rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int) -> TopK:
        """From per-example (ids, log_probs, targets), in eval order."""
        lengths = [len(targets) for _, _, targets in rows]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)

        def joined(index: int, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            parts = [row[index] for row in rows]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

        return cls(
            ids=joined(0, (0, k), np.int32),
            log_probs=joined(1, (0, k), np.float32),
            targets=joined(2, (0,), np.int32),
            offsets=offsets,
        )

    def save(self, path: Path) -> None:
        """One .npz file (uncompressed: log-probs barely compress, and loading stays instant)."""
        with open(path, "wb") as out:  # np.savez would append ".npz" to another suffix
            np.savez(
                out,
                ids=self.ids,
                log_probs=self.log_probs,
                targets=self.targets,
                offsets=self.offsets,
            )

    @classmethod
    def load(cls, path: Path) -> TopK:
        with np.load(path) as data:
            return cls(
                ids=data["ids"],
                log_probs=data["log_probs"],
                targets=data["targets"],
                offsets=data["offsets"],
            )


@dataclass
class Likelihood:
    """Per eval example, in order: `nll` (nats per completion token), `tokens` (completion
    tokens + EOS scored), and with a twin `kl` (nats per position) and `top1_agree` (share)."""

    nll: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    kl: list[float] | None = None
    top1_agree: list[float] | None = None

    def per_example(self) -> dict[str, list[float]]:
        """The per-example figures measured, by metric name (what means and paired tests use)."""
        found = {"nll": self.nll}
        if self.kl is not None and self.top1_agree is not None:
            found |= {"kl": self.kl, "top1_agree": self.top1_agree}
        return found

    def to_json(self) -> dict[str, Any]:
        agreement = {"kl": self.kl, "top1_agree": self.top1_agree} if self.kl is not None else {}
        return {"nll": self.nll, "tokens": self.tokens, **agreement}


def position_figures(
    logits: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows of logits: each row's logsumexp, its argmax and the log-prob of its target.

    float32 throughout: the max is subtracted before `exp`, so nothing overflows, and float32
    sums of up to ~10^5 terms in (0, 1] lose far less than the figures' noise."""
    rows = np.arange(len(logits))
    top = logits.argmax(axis=-1)
    peak = logits[rows, top]
    with np.errstate(over="ignore"):  # a logit more than 3e38 under the peak: exp gives 0
        shifted = logits - peak[:, None]
    np.exp(shifted, out=shifted)
    lse = peak + np.log(shifted.sum(axis=-1))
    return lse, top, logits[rows, targets] - lse


def top_k(logits: np.ndarray, lse: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `k` most likely token ids and their log-probs, most likely first.

    `argpartition` of a 49k vocabulary costs ~0.7 ms a row, so candidates are found first:
    the `SAMPLED`-th largest of every `STRIDE`-th logit is a cut that about SAMPLED * STRIDE
    logits of the row pass (token ids are not ordered by likelihood), one vectorised compare;
    only the passing ones are sorted. A row where fewer than `k` pass gets `argpartition`."""
    positions, vocab = logits.shape
    k = min(k, vocab)
    if vocab < 8 * STRIDE * SAMPLED or positions == 0:
        return _top_k_exact(logits, lse, k)
    sample = logits[:, ::STRIDE]
    cut = np.partition(sample, -SAMPLED, axis=-1)[:, -SAMPLED]
    rows, cols = np.divmod(np.flatnonzero(logits >= cut[:, None]), vocab)  # 2-D nonzero: 10x slower
    counts = np.bincount(rows, minlength=positions)
    if counts.min() < k:  # rare: those rows exactly
        short = counts < k
        ids, log_probs = top_k(logits[~short], lse[~short], k)
        exact_ids, exact_log_probs = _top_k_exact(logits[short], lse[short], k)
        out_ids = np.empty((positions, k), np.int32)
        out_log_probs = np.empty((positions, k), np.float32)
        out_ids[~short], out_log_probs[~short] = ids, log_probs
        out_ids[short], out_log_probs[short] = exact_ids, exact_log_probs
        return out_ids, out_log_probs
    values = logits[rows, cols]
    order = np.lexsort((-values, rows))  # by row, then most likely first
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = order[starts[:, None] + np.arange(k)]
    ids = cols[chosen].astype(np.int32)
    return ids, (values[chosen] - lse[:, None]).astype(np.float32)


# The candidates' cut of `top_k`: about SAMPLED * STRIDE (128) logits a row pass it.
STRIDE, SAMPLED = 32, 4


def _top_k_exact(logits: np.ndarray, lse: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.argpartition(logits, -k, axis=-1)[:, -k:]
    values = np.take_along_axis(logits, ids, axis=-1)
    order = np.argsort(-values, axis=-1, kind="stable")
    ids, values = np.take_along_axis(ids, order, -1), np.take_along_axis(values, order, -1)
    return ids.astype(np.int32), (values - lse[:, None]).astype(np.float32)


def lumped_kl(twin_log_probs: np.ndarray, model_log_probs: np.ndarray) -> np.ndarray:
    """Per position, KL(P || Q) over P's top k and the lumped tail (`TopK`'s formula); both
    arguments are (positions, k) log-probs of the same tokens. float64 on these few columns."""
    p_log = twin_log_probs.astype(np.float64)
    q_log = model_log_probs.astype(np.float64)
    p = np.exp(p_log)
    head = (p * (p_log - q_log)).sum(axis=-1)
    # r = 1 - Σ exp(log p) = -expm1(logsumexp(log p)): exact near 0, where a subtraction is not
    r_p = np.clip(-np.expm1(_logsumexp(p_log)), 0.0, 1.0)
    r_q = np.clip(-np.expm1(_logsumexp(q_log)), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(r_p > 0, r_p * (np.log(r_p) - np.log(np.maximum(r_q, 1e-300))), 0.0)
    return head + tail


def _logsumexp(values: np.ndarray) -> np.ndarray:
    peak = values.max(axis=-1)
    return peak + np.log(np.exp(values - peak[:, None]).sum(axis=-1))


class LikelihoodMeter:
    """Gathers the per-example figures from each example's teacher-forced logits, in eval order.

    With `twin`, each example's positions are compared with the twin's (which must have scored
    the same tokens); with `keep_topk` and no twin, this model's own `TopK` is kept. `seconds`
    is the time spent here (the arithmetic, not the model's passes)."""

    def __init__(self, twin: TopK | None = None, keep_topk: bool = False, k: int = DEFAULT_K):
        self.twin = twin
        self.k = twin.k if twin is not None else k
        self.keep = keep_topk and twin is None
        self.figures = Likelihood(
            kl=[] if twin is not None else None, top1_agree=[] if twin is not None else None
        )
        self.rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.seconds = 0.0

    def add(self, logits: np.ndarray, sequence: Sequence[int], start: int) -> None:
        """One example: `logits[t]` predicts `sequence[t + 1]` (len(sequence) - 1 rows, or more:
        extra rows are ignored); the completion + EOS is `sequence[start:]`."""
        begin = time.perf_counter()
        targets = np.asarray(sequence[1:], dtype=np.int64)
        rows = np.asarray(logits[: len(targets)], dtype=np.float32)
        if len(rows) != len(targets) or not 0 < start < len(sequence):
            raise ValueError(
                f"{len(rows)} logit rows for a sequence of {len(sequence)} tokens "
                f"(completion from {start})"
            )
        lse, top, target_log_probs = position_figures(rows, targets)
        self.figures.nll.append(float(-target_log_probs[start - 1 :].mean()))
        self.figures.tokens.append(len(sequence) - start)
        if self.twin is not None:
            self._compare(rows, lse, top, targets)
        elif self.keep:
            ids, log_probs = top_k(rows, lse, self.k)
            self.rows.append((ids, log_probs, targets.astype(np.int32)))
        self.seconds += time.perf_counter() - begin

    def _compare(
        self, rows: np.ndarray, lse: np.ndarray, top: np.ndarray, targets: np.ndarray
    ) -> None:
        assert self.twin is not None and self.figures.kl is not None
        index = len(self.figures.nll) - 1
        if index >= self.twin.examples:
            raise ValueError(f"the twin scored {self.twin.examples} examples; this is {index + 1}")
        ids, log_probs, twin_targets = self.twin.example(index)
        if not np.array_equal(twin_targets, targets):
            raise ValueError(f"eval example {index}: the twin scored other tokens than this model")
        model_log_probs = np.take_along_axis(rows, ids.astype(np.int64), axis=-1) - lse[:, None]
        self.figures.kl.append(float(lumped_kl(log_probs, model_log_probs).mean()))
        assert self.figures.top1_agree is not None
        self.figures.top1_agree.append(float((top == ids[:, 0]).mean()))

    def topk(self) -> TopK | None:
        """This model's own TopK (with `keep_topk`), None otherwise."""
        return TopK.of_rows(self.rows, self.k) if self.keep else None


def appended_logits(generator, tokens: Sequence[int], before: int) -> np.ndarray:
    """Append `tokens` to a generator holding `before` tokens and return the logits of every
    appended position, (len(tokens), vocab). An export with a pruned LM head returns the last
    position's only: then the tokens are appended again one at a time."""
    tokens = [int(t) for t in tokens]
    generator.append_tokens(tokens)
    logits = np.asarray(generator.get_output("logits"))[0]
    if len(logits) == len(tokens):
        return logits
    generator.rewind_to(before)
    rows = []
    for token in tokens:
        generator.append_tokens([token])
        rows.append(np.asarray(generator.get_output("logits"))[0, -1])
    return np.stack(rows)


def forced_generator(model, length: int):
    """A greedy og.Generator with room for `length` tokens."""
    import onnxruntime_genai as og

    params = og.GeneratorParams(model)
    params.set_search_options(max_length=length, do_sample=False)
    return og.Generator(model, params)


def teacher_forced(model, sequence: Sequence[int]) -> np.ndarray:
    """The logits predicting tokens 1..L-1 of `sequence` (one pass), (L - 1, vocab)."""
    generator = forced_generator(model, len(sequence))
    return appended_logits(generator, sequence[:-1], 0)


def perplexity_of(nll: float) -> float:
    return math.exp(nll) if math.isfinite(nll) else math.nan
