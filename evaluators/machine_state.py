"""What the machine was doing while a measurement ran, so that a disturbed one can be told apart.

`observe()` samples the machine when a timed block starts and when it ends, and gives a
`MachineState`: the load average at both ends, the CPU time this process used (all its threads,
onnxruntime's included), the CPU time everything else used on the cores this process may run on
(their /proc/stat busy time less this process's own: a local worker pinned to other cores does not
count), steal time (virtual machines) and the clock frequency. `contamination()` turns a state and
the measurement's coefficients of variation into the reasons, if any, not to trust it.

Stdlib only, reading /proc and /sys directly. A reading that fails (no /proc, as on macOS) gives
None or zero rather than raising: a measurement never fails because of this module. Child
processes of this process are not part of its own CPU time; they count as other processes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from autotune.spaces import NoiseSection

_PROC_STAT = Path("/proc/stat")
_LOADAVG = Path("/proc/loadavg")
_CPUINFO = Path("/proc/cpuinfo")
_CPU_SYS = Path("/sys/devices/system/cpu")

# /proc/stat `cpu` fields after the label: user nice system idle iowait irq softirq steal guest
# guest_nice (in jiffies). Busy is user + nice + system + irq + softirq (guest time is already
# inside user and nice); idle, iowait and steal are not time this machine's processes ran.
_BUSY_FIELDS = (0, 1, 2, 5, 6)
_STEAL_FIELD = 7


@dataclass(frozen=True)
class MachineState:
    """One observed interval. Times are in seconds; `other_cpu` is the CPU time of everything
    but this process, `steal` the time the hypervisor gave this machine's CPUs to others (None
    where the kernel does not report it), `cpu_mhz` the mean current clock (None if unknown)."""

    seconds: float
    load_before: float
    load_after: float
    own_cpu: float
    other_cpu: float
    steal: float | None
    cpu_mhz: float | None
    cores: int

    @property
    def other_cores(self) -> float:
        """How many cores other processes kept busy, on average over the interval."""
        return self.other_cpu / self.seconds if self.seconds > 0 else 0.0

    @property
    def steal_fraction(self) -> float | None:
        """Steal time as a fraction of all the CPU time the interval had."""
        if self.steal is None or self.seconds <= 0 or self.cores <= 0:
            return None
        return self.steal / (self.seconds * self.cores)

    def to_json(self) -> dict:
        def plain(value: float | None) -> float | None:
            return None if value is None else round(float(value), 6)

        return {
            "seconds": plain(self.seconds),
            "load_before": plain(self.load_before),
            "load_after": plain(self.load_after),
            "own_cpu": plain(self.own_cpu),
            "other_cpu": plain(self.other_cpu),
            "other_cores": plain(self.other_cores),
            "steal": plain(self.steal),
            "steal_fraction": plain(self.steal_fraction),
            "cpu_mhz": plain(self.cpu_mhz),
            "cores": int(self.cores),
        }


def _clock_ticks() -> int:
    try:
        ticks = os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100
    return ticks if ticks > 0 else 100


def my_cores() -> list[int]:
    """The CPUs this process may run on (a local worker is pinned to its share)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cpu_times(cores: list[int]) -> tuple[float, float | None] | None:
    """(busy seconds, steal seconds or None) since boot of the CPUs in `cores`, from their own
    /proc/stat lines: load on cores this process cannot use (another worker's) does not count.
    None without /proc/stat."""
    wanted = {f"cpu{core}" for core in cores}
    busy, steal, seen = 0, 0, 0
    has_steal = True
    try:
        with _PROC_STAT.open() as lines:
            for line in lines:
                name, *fields = line.split()
                if name not in wanted:
                    continue
                values = [int(v) for v in fields]
                if len(values) <= max(_BUSY_FIELDS):
                    return None
                busy += sum(values[i] for i in _BUSY_FIELDS)
                has_steal = has_steal and len(values) > _STEAL_FIELD
                steal += values[_STEAL_FIELD] if len(values) > _STEAL_FIELD else 0
                seen += 1
    except (OSError, ValueError):
        return None
    if not seen:
        return None
    ticks = _clock_ticks()
    return busy / ticks, (steal / ticks if has_steal else None)


def load_average() -> float:
    """The 1-minute load average; 0.0 where the platform cannot say."""
    try:
        return float(_LOADAVG.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def cpu_mhz() -> float | None:
    """Mean current clock of the CPUs in MHz: cpufreq's scaling_cur_freq, else /proc/cpuinfo."""
    readings: list[float] = []
    try:
        for path in _CPU_SYS.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
            try:
                readings.append(int(path.read_text().strip()) / 1000)  # kHz
            except (OSError, ValueError):
                continue
    except OSError:
        readings = []
    if not readings:
        try:
            for line in _CPUINFO.read_text().splitlines():
                name, _, value = line.partition(":")
                if name.strip().lower() == "cpu mhz":
                    try:
                        readings.append(float(value))
                    except ValueError:
                        continue
        except OSError:
            pass
    return sum(readings) / len(readings) if readings else None


@dataclass(frozen=True)
class _Sample:
    wall: float
    own: float
    cpu: tuple[float, float | None] | None
    load: float
    mhz: float | None


def _sample(cores: list[int]) -> _Sample:
    # Process and machine CPU time read back to back, so that they cover the same interval.
    own = time.process_time()
    cpu = _cpu_times(cores)
    return _Sample(time.perf_counter(), own, cpu, load_average(), cpu_mhz())


class Observation:
    """Samples the machine at `start()` and `stop()`; `state` is the interval's MachineState."""

    def __init__(self) -> None:
        self._start: _Sample | None = None
        self._state: MachineState | None = None
        self._cores = my_cores()

    def start(self) -> Observation:
        self._start = _sample(self._cores)
        self._state = None
        return self

    def stop(self) -> MachineState:
        end = _sample(self._cores)
        begin = self._start if self._start is not None else end
        seconds = max(end.wall - begin.wall, 0.0)
        own = max(end.own - begin.own, 0.0)
        other = 0.0
        steal: float | None = None
        if begin.cpu is not None and end.cpu is not None:
            other = max(end.cpu[0] - begin.cpu[0] - own, 0.0)
            if begin.cpu[1] is not None and end.cpu[1] is not None:
                steal = max(end.cpu[1] - begin.cpu[1], 0.0)
        clocks = [m for m in (begin.mhz, end.mhz) if m is not None and math.isfinite(m)]
        self._state = MachineState(
            seconds=seconds,
            load_before=begin.load,
            load_after=end.load,
            own_cpu=own,
            other_cpu=other,
            steal=steal,
            cpu_mhz=sum(clocks) / len(clocks) if clocks else None,
            cores=len(self._cores),
        )
        return self._state

    @property
    def state(self) -> MachineState:
        if self._state is None:
            raise RuntimeError("the observation has not been stopped yet")
        return self._state


@contextmanager
def observe() -> Iterator[Observation]:
    """`with observe() as seen: <timed work>` then `seen.state` is the interval's MachineState
    (also when the work raised)."""
    seen = Observation().start()
    try:
        yield seen
    finally:
        seen.stop()


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.0f}%"


def contamination(state: MachineState, cvs: dict[str, float], bounds: NoiseSection) -> list[str]:
    """Why a measurement is not to be trusted, as short phrases; an empty list means clean.
    `cvs` maps figure names (`decode_ms`, `ttft_ms`) to coefficients of variation (fractions)."""
    reasons: list[str] = []
    if state.other_cores > bounds.max_other_cores:
        reasons.append(f"other processes used {state.other_cores:.1f} cores")
    for name, cv in cvs.items():
        if cv is not None and math.isfinite(cv) and cv > bounds.max_cv:
            reasons.append(f"{name} cv {_percent(cv)} > {_percent(bounds.max_cv)}")
    steal = state.steal_fraction
    if steal is not None and steal > bounds.max_steal:
        reasons.append(f"steal {_percent(steal)} of CPU time")
    return reasons
