"""Peak memory of the measuring process: resident memory (cpu) and GPU memory (cuda).

On Linux the kernel's resident-set high-water mark can be reset (`/proc/self/clear_refs`), so the
peak covers only what happens inside `track_memory`. GPU memory is the device memory NVML reports
for this process, sampled in a background thread.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import resource
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")


def _status_mb(field: str) -> float | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def rss_mb() -> float:
    """Current resident memory of this process, in MiB."""
    current = _status_mb("VmRSS")
    if current is None:  # not Linux: the lifetime peak is the best available figure
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return current


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc), so that memory an earlier stage freed
    is not silently reused and missed by the next measurement."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def release_torch_gpu_cache() -> None:
    """Give the GPU memory torch keeps cached (after a training in this process) back to the
    device, so that the model measured next has it and it is not counted against the model."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def reset_peak_rss() -> bool:
    """Restart the resident-memory high-water mark; False where the platform cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """Peak resident memory since the last reset (or since the process started), in MiB."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class MemoryReport:
    """`peak_mem_mb`: peak resident memory of the process while measuring; `model_mem_mb`: how
    much of it the measurement added over the resident memory before it; `gpu_peak_mb`: peak
    device memory of the process (cuda only; `gpu_per_process` is False when NVML could not
    attribute memory to this process and the device's growth was taken instead)."""

    peak_mem_mb: float = 0.0
    model_mem_mb: float = 0.0
    gpu_peak_mb: float | None = None
    peak_since_reset: bool = True
    gpu_per_process: bool | None = None


class GpuMemorySampler:
    """Samples this process's device memory through NVML until stopped; keeps the maximum.

    NVML lists the processes using the GPU by host PID. Inside a container with its own PID
    namespace this process is not among them; the sampler then falls back to the device's used
    memory minus what was used when sampling started (`per_process` says which it measured).
    """

    def __init__(self, interval_s: float = 0.005):
        import pynvml  # from nvidia-ml-py, in the `cuda` extra

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = _visible_device(pynvml)
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak_mb = 0.0
        self._baseline_mb = self._device_used_mb()
        self.per_process = True
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _device_used_mb(self) -> float:
        return self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20

    def _used_mb(self) -> float:
        processes = self._nvml.nvmlDeviceGetComputeRunningProcesses(self._handle)
        used = [p.usedGpuMemory for p in processes if p.pid == os.getpid() and p.usedGpuMemory]
        if used:
            return sum(used) / 2**20
        if processes or self._device_used_mb() > self._baseline_mb:
            # Memory in use that NVML does not attribute to our PID: a PID namespace.
            self.per_process = False
            return max(0.0, self._device_used_mb() - self._baseline_mb)
        return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._used_mb())
            time.sleep(self._interval)

    def __enter__(self) -> GpuMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._used_mb())


def _visible_device(pynvml):
    """The NVML handle of the first device in CUDA_VISIBLE_DEVICES (an index or a UUID)."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    if first.isdigit():
        return pynvml.nvmlDeviceGetHandleByIndex(int(first))
    return pynvml.nvmlDeviceGetHandleByUUID(first)


@contextmanager
def track_memory(target: str) -> Iterator[MemoryReport]:
    """Measure the memory used inside the block; the report is filled in when it ends."""
    report = MemoryReport()
    gc.collect()
    release_free_memory()
    release_torch_gpu_cache()
    before = rss_mb()
    report.peak_since_reset = reset_peak_rss()
    sampler = GpuMemorySampler() if target == "cuda" else None
    if sampler is None:
        yield report
    else:
        with sampler:
            yield report
        report.gpu_peak_mb = sampler.peak_mb
        report.gpu_per_process = sampler.per_process
        report.gpu_per_process = sampler.per_process
    report.peak_mem_mb = peak_rss_mb()
    report.model_mem_mb = max(0.0, report.peak_mem_mb - before)


class PeakMemory:
    """Peak memory of the block: CUDA allocations on a GPU, resident memory on a CPU (MiB)."""

    def __init__(self, device: str):
        self.device = device
        self.peak_mb: float | None = None

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            reset_peak_rss()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            import torch

            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.peak_mb = peak_rss_mb()
