"""What a command sets and checks before any work starts: offline libraries, quiet logs, the
thread count, and (for --target cuda) a usable GPU."""

from __future__ import annotations

import os

from autotune.errors import UsageError
from autotune.spaces import Space, model_source


def prepare_environment(space: Space, threads: int) -> None:
    """What libraries read when they are imported: set before the study's modules load."""
    go_offline(space)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def worker_threads(space: Space, worker_slot: str | None) -> int:
    """Training threads: the space's, at most the cores a worker of --workers N was given."""
    if worker_slot:
        return min(space.train.threads, len(os.sched_getaffinity(0)))
    return space.train.threads


def go_offline(space: Space) -> None:
    """No hub calls when everything is local (set before transformers and datasets import)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    if model_source(space) in ("tiny", "local"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def quiet_libraries() -> None:
    """Keep library progress bars, INFO logs and deprecation warnings off the terminal."""
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    import logging

    # bitsandbytes warns at import that an optional CPU kernel package is missing (it falls back).
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import optuna
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # Failed trials are reported by autotune itself, with the traceback in trials/<n>/error.log.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def start_process(threads: int) -> None:
    """Quiet libraries and `threads` torch threads (before torch starts any); the environment
    was prepared before the study's modules were imported (`prepare_environment`)."""
    quiet_libraries()
    import torch

    torch.set_num_threads(threads)


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
