"""Where each of `--workers N` local workers runs: its own GPU (CUDA_VISIBLE_DEVICES) or, for
the cpu target, its own share of the CPU cores."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """Where local worker `index` of `count` runs: its GPU, or its CPU cores."""

    index: int
    count: int

    def cuda_devices(self, visible: list[str]) -> str:
        return visible[self.index]

    def cpu_cores(self, available: list[int]) -> list[int]:
        """An equal, disjoint share of `available` cores (one each if there are fewer cores)."""
        share = max(1, len(available) // self.count)
        cores = available[self.index * share : (self.index + 1) * share]
        return cores or [available[self.index % len(available)]]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def pin_cpu(cores: list[int]) -> None:
    """Run this process (and the threads it starts) on `cores` only."""
    os.sched_setaffinity(0, cores)
