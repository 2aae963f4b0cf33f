"""CPU time per tier of the stack, read from /proc and the containers' cgroups (cgroup v1 or v2).

A tier is a set of process trees on the host (the API, the worker hosts, Flower, Redis, Docker's daemons,
the load generator) or the sandboxes' cgroup. A process tree's CPU is the sum over its live processes of
their own user+system time and their reaped children's (so a child that ran and exited in between counts
once, at its parent); processes inside a container's cgroup belong to the sandboxes, never to a host tier.
The sandboxes' CPU comes from the parent cgroup of every container, which keeps the CPU of containers that
were removed in between (cgroup accounting charges every ancestor as it goes). All figures in seconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
DOCKER_DAEMONS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "docker-proxy")
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CpuTime:
    """User and system (kernel) CPU seconds."""

    user_s: float = 0.0
    system_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s

    def __add__(self, other: CpuTime) -> CpuTime:
        return CpuTime(self.user_s + other.user_s, self.system_s + other.system_s)

    def __sub__(self, other: CpuTime) -> CpuTime:
        return CpuTime(self.user_s - other.user_s, self.system_s - other.system_s)


@dataclass(frozen=True)
class Snapshot:
    """CPU time of every tier and of the whole machine at one moment."""

    tiers: Mapping[str, CpuTime]
    machine: CpuTime
    machine_idle_s: float

    def minus(self, earlier: Snapshot) -> Snapshot:
        names = set(self.tiers) | set(earlier.tiers)
        return Snapshot({name: self.tiers.get(name, CpuTime()) - earlier.tiers.get(name, CpuTime())
                         for name in sorted(names)},
                        self.machine - earlier.machine, self.machine_idle_s - earlier.machine_idle_s)


def in_container(pid: int) -> bool:
    """True when the process is in a Docker container's cgroup (it is a sandbox's, not the host's)."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False
    return "/docker/" in text or "docker-" in text


def tree_cpu(root: psutil.Process) -> CpuTime:
    """CPU of root and its live descendants outside containers (reaped children counted at their parent)."""
    total = CpuTime()
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return total
    for proc in members:
        if in_container(proc.pid):
            continue
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += CpuTime(times.user + times.children_user, times.system + times.children_system)
    return total


def docker_daemons_cpu() -> CpuTime:
    """dockerd, containerd and the shims (outside the containers' cgroups)."""
    total = CpuTime()
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in DOCKER_DAEMONS and not in_container(proc.pid):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += CpuTime(times.user, times.system)
    return total


def sandboxes_cpu(cgroup_root: Path = CGROUP_ROOT) -> CpuTime:
    """All containers' CPU from their parent cgroup (v1 cpuacct/docker, or v2 system.slice / docker)."""
    v1 = cgroup_root / "cpuacct" / "docker" / "cpuacct.stat"
    if not v1.exists():
        v1 = cgroup_root / "cpu,cpuacct" / "docker" / "cpuacct.stat"
    if v1.exists():
        stat = dict(line.split() for line in v1.read_text().splitlines())
        return CpuTime(int(stat["user"]) / CLOCK_TICKS, int(stat["system"]) / CLOCK_TICKS)
    for parent in (cgroup_root / "system.slice", cgroup_root / "docker"):
        stat_file = parent / "cpu.stat"
        if stat_file.exists():
            total = CpuTime()
            for child in parent.glob("docker-*.scope"):
                total += _v2_cpu(child / "cpu.stat")
            return total
    return CpuTime()


def _v2_cpu(path: Path) -> CpuTime:
    try:
        stat = dict(line.split() for line in path.read_text().splitlines())
    except OSError:
        return CpuTime()
    return CpuTime(int(stat["user_usec"]) / 1e6, int(stat["system_usec"]) / 1e6)


def machine_cpu() -> tuple[CpuTime, float]:
    """((user+nice, system+irq+softirq), idle+iowait) of the whole machine from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    busy = CpuTime((user + nice) / CLOCK_TICKS, (system + irq + softirq + steal) / CLOCK_TICKS)
    return busy, (idle + iowait) / CLOCK_TICKS


@dataclass
class TierSampler:
    """Snapshots of the CPU per tier; `roots` maps a tier to the pids of its process trees' roots."""

    roots: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, Callable[[], CpuTime]] = field(default_factory=dict)

    def add(self, tier: str, pids: Iterable[int]) -> None:
        self.roots.setdefault(tier, []).extend(pids)

    def snapshot(self) -> Snapshot:
        tiers: dict[str, CpuTime] = {}
        for tier, pids in self.roots.items():
            total = CpuTime()
            for pid in pids:
                try:
                    total += tree_cpu(psutil.Process(pid))
                except psutil.Error:
                    continue
            tiers[tier] = total
        tiers["docker"] = docker_daemons_cpu()
        tiers["sandboxes"] = sandboxes_cpu()
        for tier, read in self.extra.items():
            tiers[tier] = read()
        busy, idle = machine_cpu()
        return Snapshot(tiers, busy, idle)


def per_execution_ms(delta: Snapshot, executions: int) -> dict[str, object]:
    """CPU milliseconds per execution of each tier, the kernel's share, and what no tier accounts for."""
    count = max(executions, 1)
    tiers = {name: round(cpu.total_s * 1000 / count, 3) for name, cpu in delta.tiers.items()}
    service = {name: ms for name, ms in tiers.items() if name != "loadgen"}
    accounted = sum(cpu.total_s for cpu in delta.tiers.values())
    return {
        "tiers_ms": tiers,
        "service_ms": round(sum(service.values()), 3),
        "kernel_ms": round(sum(cpu.system_s for name, cpu in delta.tiers.items() if name != "loadgen")
                           * 1000 / count, 3),
        "machine_ms": round(delta.machine.total_s * 1000 / count, 3),
        "unaccounted_ms": round((delta.machine.total_s - accounted) * 1000 / count, 3),
        "machine_busy_share": round(delta.machine.total_s / max(delta.machine.total_s + delta.machine_idle_s,
                                                                1e-9), 3),
    }
