"""CPU time, memory and machine load from ``/proc`` (Linux), without psutil.

Every reader returns ``None`` where ``/proc`` is unavailable or the process is
gone, so that a report says "unknown" rather than failing the run.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# /proc/<pid>/stat fields after the ")" that ends the command name: utime is
# field 14 and stime field 15 of the whole line, i.e. indexes 11 and 12 here.
_UTIME, _STIME = 11, 12


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far, in seconds."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[_UTIME]) + int(fields[_STIME])) / _CLK_TCK


def _status_kib(pid: int | str, key: str) -> int | None:
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_rss_bytes(pid: int | str) -> int | None:
    """The kernel's high-water mark of resident memory (VmHWM) of ``pid``."""
    kib = _status_kib(pid, "VmHWM")
    return None if kib is None else kib * 1024


def rss_bytes(pid: int | str) -> int | None:
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib * 1024


def own_peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux (bytes on macOS, which this tool does not target).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine_cpu_busy_seconds() -> float | None:
    """CPU seconds spent not idle, summed over all cores, since boot (/proc/stat)."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already counted in user, so it is left out.
    values = [int(v) for v in first[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def loadavg() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = (PROC / "loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return None
    return float(one), float(five), float(fifteen)


def raise_open_files_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: one socket per in-flight order.
    Child processes (the embedded engine) inherit it. Returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def machine_info() -> dict[str, str | int | float | None]:
    model = None
    with contextlib.suppress(OSError):
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kib: int | None = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
                break
    return {
        "cpu_model": model or platform.processor() or None,
        "cores": os.cpu_count(),
        "ram_gib": None if mem_kib is None else round(mem_kib / 1024**2, 1),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.release()}",
    }


@dataclass(frozen=True)
class CpuSample:
    """A point in time: wall clock, this process's CPU, the machine's busy CPU,
    and each watched process's CPU."""

    wall: float
    own_cpu: float
    machine_busy: float | None
    watched: dict[int, float | None]

    @classmethod
    def take(cls, pids: list[int]) -> CpuSample:
        return cls(
            wall=time.perf_counter(),
            own_cpu=time.process_time(),
            machine_busy=machine_cpu_busy_seconds(),
            watched={pid: process_cpu_seconds(pid) for pid in pids},
        )


@dataclass(frozen=True)
class CpuUsage:
    """CPU between two samples, in cores (1.0 = one core fully busy)."""

    wall_s: float
    client_cores: float
    client_cpu_s: float
    machine_cores: float | None
    watched_cores: dict[int, float | None]
    watched_cpu_s: dict[int, float | None]

    @property
    def others_cores(self) -> float | None:
        """Machine CPU not spent by this client or the watched processes: other
        people's work sharing the machine during the measurement."""
        if self.machine_cores is None or any(v is None for v in self.watched_cores.values()):
            return None
        ours = self.client_cores + sum(v or 0.0 for v in self.watched_cores.values())
        return max(0.0, self.machine_cores - ours)


def cpu_between(start: CpuSample, end: CpuSample) -> CpuUsage:
    wall = max(end.wall - start.wall, 1e-9)
    machine = None
    if start.machine_busy is not None and end.machine_busy is not None:
        machine = (end.machine_busy - start.machine_busy) / wall
    watched_s: dict[int, float | None] = {}
    for pid, before in start.watched.items():
        after = end.watched.get(pid)
        watched_s[pid] = None if before is None or after is None else after - before
    client_s = end.own_cpu - start.own_cpu
    return CpuUsage(
        wall_s=wall,
        client_cores=client_s / wall,
        client_cpu_s=client_s,
        machine_cores=machine,
        watched_cores={pid: None if s is None else s / wall for pid, s in watched_s.items()},
        watched_cpu_s=watched_s,
    )
