"""Masked paths: what a job could read of the jobs that ran before it in the same pooled sandbox.

A stateless sandbox serves up to CONTAINER_MAX_JOBS jobs, of any tenant. The reset between jobs removes
their processes and files, but the kernel keeps figures about the container as a whole: its cgroup's peak
memory (memory.max_usage_in_bytes and friends), cumulative CPU time (cpuacct.*, cpu.stat), I/O and page
fault counters, pressure stall totals, and PID 1's (the supervisor's) CPU time and its reaped children's,
i.e. every earlier job's kernel (/proc/1/stat, cutime and cstime), its context switches and I/O
counters. Most cannot be reset, so the container never shows them: Docker's MaskedPaths mounts /dev/null
over each file (a read-only empty tmpfs over a directory) when the container starts; a path the host does
not have (cgroup v1 or v2 only) is skipped. Kept readable: memory.oom_control / memory.events, whose
OOM-kill count the supervisor needs to classify a killed kernel (an earlier job's OOM kill shows there),
and the PID counter (a new kernel's pid tells how many processes were started before it). A job's own
figures come from its kernel's getrusage (the result's metrics), not from these files.
"""

from __future__ import annotations

from typing import Any

import docker
from docker.models.containers import Container
from docker.models.containers import _create_container_args as create_container_args

# Docker's own default list (masked paths given through the API replace it, so it is repeated here).
DOCKER_DEFAULTS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)

# PID 1 is the supervisor (single-threaded: its only task is 1): its own and its reaped kernels' CPU times,
# its context switches and scheduling figures (one more per message it relayed for an earlier job), its I/O
# counters (rchar/wchar: how much an earlier job printed), its memory high-water mark.
SUPERVISOR_FIGURES = tuple(f"/proc/1/{where}{name}" for where in ("", "task/1/")
                           for name in ("stat", "status", "sched", "schedstat", "statm", "io"))

_V1 = "/sys/fs/cgroup"
CGROUP_V1_FIGURES = (
    # Whole controllers that hold only figures (CPU time, throttling, I/O, process counts, huge pages).
    f"{_V1}/cpu,cpuacct", f"{_V1}/cpu", f"{_V1}/cpuacct", f"{_V1}/blkio", f"{_V1}/pids", f"{_V1}/hugetlb",
    # The memory controller's peaks and cumulative counters (its limits and oom_control stay).
    *(f"{_V1}/memory/memory.{name}" for name in (
        "max_usage_in_bytes", "memsw.max_usage_in_bytes", "kmem.max_usage_in_bytes",
        "kmem.tcp.max_usage_in_bytes", "failcnt", "memsw.failcnt", "kmem.failcnt", "kmem.tcp.failcnt",
        "stat", "numa_stat", "kmem.slabinfo")),
)
CGROUP_V2_FIGURES = tuple(f"/sys/fs/cgroup/{name}" for name in (
    "memory.peak", "memory.swap.peak", "memory.stat", "memory.numa_stat", "cpu.stat", "cpu.stat.local",
    "io.stat", "pids.peak", "pids.events", "pids.events.local", "hugetlb.2MB.events", "hugetlb.1GB.events",
    # Pressure stall totals (microseconds stalled since the cgroup was made) and the event counts besides
    # memory.events (which keeps the OOM-kill count the supervisor reads).
    "cpu.pressure", "memory.pressure", "io.pressure", "irq.pressure", "memory.events.local",
    "memory.swap.events"))

MASKED_PATHS = (*DOCKER_DEFAULTS, *SUPERVISOR_FIGURES, *CGROUP_V1_FIGURES, *CGROUP_V2_FIGURES)


def create_container(client: docker.DockerClient, config: dict[str, Any]) -> Container:
    """containers.create(**config) with MASKED_PATHS in the host config (docker-py has no argument for it)."""
    create_kwargs = create_container_args({**config, "version": client.api._version})
    create_kwargs["host_config"]["MaskedPaths"] = list(MASKED_PATHS)
    response = client.api.create_container(**create_kwargs)
    return client.containers.get(response["Id"])
