"""Bad command-line input, reported in one message with exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input that is not in the space file (target, run folder, model folder, flags)."""


def require_gpu() -> None:
    """Refuse `--target cuda` where no CUDA GPU is visible, where the installed onnxruntime-genai
    cannot use one (the CPU package instead of onnxruntime-genai-cuda), or where NVML, which
    measures the GPU memory, is missing."""
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            "--target cuda needs a CUDA GPU and none is visible here "
            "(torch.cuda.is_available() is False); use --dry-run to validate the space only"
        )
    import onnxruntime_genai as og  # the package set ORT_DISABLE_TELEMETRY on import

    if not og.is_cuda_available():
        raise UsageError(
            "--target cuda needs onnxruntime-genai built for CUDA, and the installed one is not "
            "(onnxruntime_genai.is_cuda_available() is False); install onnxruntime-genai-cuda in "
            "place of onnxruntime-genai (README: the cuda target)"
        )
    try:
        import pynvml  # noqa: F401
    except ImportError:
        raise UsageError(
            "--target cuda measures GPU memory through NVML, and nvidia-ml-py is not installed; "
            'pip install -e ".[cuda]"'
        ) from None
