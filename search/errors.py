"""Bad command-line input, reported in one message with exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input that is not in the space file (target, run folder, model folder, flags)."""


def require_gpu() -> None:
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            "--target cuda needs a CUDA GPU and none is visible here "
            "(torch.cuda.is_available() is False); use --dry-run to validate the space only"
        )
