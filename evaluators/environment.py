"""The machine and software a measurement was taken on, so that a figure can be reproduced."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

PACKAGES = (
    "autotune",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-genai",
    "onnxruntime-genai-cuda",
    "torch",
    "transformers",
    "peft",
    "bitsandbytes",
    "onnx",
    "onnx-ir",
    "optuna",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def gpus() -> list[dict[str, object]]:
    """Name, memory and driver of each visible NVIDIA GPU (empty without NVML or a GPU)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no nvidia-ml-py, no driver, no GPU
        return []
    driver = pynvml.nvmlSystemGetDriverVersion()
    found = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        name = pynvml.nvmlDeviceGetName(handle)
        found.append(
            {
                "index": index,
                "name": name.decode() if isinstance(name, bytes) else name,
                "memory_gb": round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30, 1),
                "driver": driver.decode() if isinstance(driver, bytes) else driver,
            }
        )
    return found


# What stage-cache keys hold: the tools that made an entry.
TRAINING_TOOLS = ("torch", "transformers", "peft", "bitsandbytes")
# The builder is the CPU or the CUDA build of onnxruntime-genai, whichever is installed.
EXPORT_TOOLS = ("onnxruntime-genai", "onnxruntime-genai-cuda", "onnx", "onnx-ir")


def tools(versions: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The installed versions (package -> version) of the packages `names` that are installed."""
    return {name: versions[name] for name in names if name in versions}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def describe(target: str) -> dict[str, object]:
    """CPU model, cores, memory, GPUs (cuda), OS and package versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "target": target,
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gb": memory_total_gb(),
        "gpus": gpus() if target == "cuda" else [],
        "os": platform.platform(),
        "versions": versions(),
    }
