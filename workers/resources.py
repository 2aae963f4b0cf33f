"""Resource figures of a sandbox container, read from its cgroup on the host (cheap: three small files).

Reading the cgroup costs microseconds; Docker's stats endpoint costs a second per call (it waits for a
second sample). Supported layouts: cgroup v1 and v2 with the cgroupfs driver, v2 with systemd.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Sample:
    """Memory in use (bytes), tmpfs bytes (the writable paths), cumulative CPU (ns), when (monotonic s)."""

    memory_bytes: int
    disk_bytes: int
    cpu_ns: int
    at_s: float


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_value(path: Path, name: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def sample(container_id: str, *, root: Path = CGROUP_ROOT) -> Sample | None:
    """The container's current figures, or None if its cgroup cannot be found from here."""
    v1_memory = root / "memory" / "docker" / container_id
    if v1_memory.is_dir():
        memory = _read_int(v1_memory / "memory.usage_in_bytes")
        shmem = _stat_value(v1_memory / "memory.stat", "total_shmem")
        cpu = _read_int(root / "cpuacct" / "docker" / container_id / "cpuacct.usage")
        if memory is None or cpu is None:
            return None
        return Sample(memory, shmem or 0, cpu, time.monotonic())
    for v2 in (root / "docker" / container_id, root / "system.slice" / f"docker-{container_id}.scope"):
        if v2.is_dir():
            memory = _read_int(v2 / "memory.current")
            usage_usec = _stat_value(v2 / "cpu.stat", "usage_usec")
            if memory is None or usage_usec is None:
                return None
            return Sample(memory, _stat_value(v2 / "memory.stat", "shmem") or 0, usage_usec * 1000,
                          time.monotonic())
    return None


def cpu_percent(before: Sample, after: Sample) -> float:
    """CPU use between two samples, in percent of one core."""
    elapsed_ns = (after.at_s - before.at_s) * 1e9
    return round(max(0.0, (after.cpu_ns - before.cpu_ns) / elapsed_ns * 100), 1) if elapsed_ns > 0 else 0.0
