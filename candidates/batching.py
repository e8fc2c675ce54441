"""Batches of token lists for training: grouped by length, right-padded."""

from __future__ import annotations

import torch


def pad_batch(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists to one tensor, with the attention mask."""
    width = max(len(ids) for ids in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, tokens in enumerate(batch):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    return ids, mask


def length_grouped_batches(
    lengths: list[int], batch_size: int, generator: torch.Generator, group: int = 32
) -> list[list[int]]:
    """Shuffled batches of indices whose sequences have similar lengths (less padding).

    The indices are shuffled, cut into groups of `group` batches, each group sorted by length and
    cut into batches; the batches are shuffled again so lengths do not come in order.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    span = batch_size * group
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]
