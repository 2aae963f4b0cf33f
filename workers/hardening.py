"""The one function that decides how a sandbox container is locked down."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from docker.types import LogConfig, Ulimit

from core.isolation import DOCKER_RUNTIME, Tier
from core.policies import FilesystemPolicy, ImportPolicy, runtime_policy_json
from core.settings import Settings
from workers.site import CURRENT

SANDBOX_UID = 1000
# Every path the sandbox can write; the runtime wipes each of them between stateless jobs.
WRITABLE_PATHS = ("/workspace", "/tmp", "/dev/shm", "/dev/mqueue")
LABEL_SANDBOX = "penny.sandbox"
LABEL_WORKER = "penny.worker"
LABEL_POOL = "penny.pool"
LABEL_MODE = "penny.mode"
LABEL_TIER = "penny.tier"
OPEN_FILES_LIMIT = 1024
SHM_SIZE_BYTES = 16 * 1024 * 1024
SHM_FILES = 1024


SITE_MOUNT = "/opt/penny/site"


@functools.cache
def runtime_policy(policy_dir: str) -> str:
    """PENNY_POLICY for the sandboxes, from policies/imports.json and filesystem.json (read once)."""
    return runtime_policy_json(ImportPolicy.load(Path(policy_dir)), FilesystemPolicy.load(Path(policy_dir)))


@functools.cache
def seccomp_profile(path: str) -> str:
    """The sandboxes' Docker seccomp profile as compact JSON (docker takes the content, not a path); read once.

    A missing or unreadable profile stops the worker (OSError, ValueError): a sandbox never starts without it.
    """
    return json.dumps(json.loads(Path(path).read_text()), separators=(",", ":"))


# What differs per tier, and why (README, "Running under gVisor"). Everything else in the config is the same on
# both tiers; nothing here loosens runc's.
#
# gVisor's pids: Docker's pids limit counts the host tasks of the sandbox, which under gVisor are the Sentry's
# and the gofer's threads (about GVISOR_BASE_TASKS) plus, with the ptrace platform, a stub process and threads
# for every application process (about GVISOR_TASKS_PER_PROCESS); application processes themselves are the
# Sentry's, not the host's. Measured with runsc 0.0~20221219: 64 host tasks leave room for 4 processes, 128
# for 17. The limit is scaled so that as many application processes fit as PIDS_LIMIT allows under runc. Past it
# the Sentry cannot make a thread and the whole sandbox ends (the fork bomb is stopped; the job's result is an
# error and the worker replaces the sandbox): gVisor does not enforce RLIMIT_NPROC, so nothing stops a fork
# inside with EAGAIN as the pids cgroup does under runc.
#
# gVisor's memory: the container's memory cgroup also holds the Sentry, the gofer and gVisor's memory file, whose
# pages the Sentry frees back lazily. Measured: an idle interpreter with numpy and pandas takes 65 MB under
# runsc against 43 MB under runc, and the plot test's peak (a 2000x2000 RGB imshow) 534 MB of resident memory
# inside against 491 MB. GVISOR_SENTRY_MEMORY_BYTES is added to the limit so that user code gets about the
# room MAX_MEMORY_PER_SESSION gives it under runc.
GVISOR_BASE_TASKS = 64
GVISOR_TASKS_PER_PROCESS = 6
GVISOR_SENTRY_MEMORY_BYTES = 128 * 1024 * 1024


def tier_options(settings: Settings, tier: Tier) -> dict[str, Any]:
    """The container options that depend on the tier (they replace the shared ones)."""
    if tier is not Tier.GVISOR:
        return {}
    memory_bytes = settings.max_memory_per_session + GVISOR_SENTRY_MEMORY_BYTES
    return {"pids_limit": GVISOR_BASE_TASKS + GVISOR_TASKS_PER_PROCESS * settings.pids_limit,
            "mem_limit": memory_bytes, "memswap_limit": memory_bytes}


def tier_environment(tier: Tier) -> dict[str, str]:
    """The runtime's environment that depends on the tier.

    gVisor: its Sentry implements seccomp for the application without user notification (SECCOMP_RET_USER_NOTIF),
    so the kernel's filter refuses its `report` rules with EPERM without recording a violation
    (sandbox_runtime.seccomp_filter, mode `refuse`); the refusals are the same.
    """
    if tier is Tier.GVISOR:
        return {"PENNY_SECCOMP": "refuse"}
    return {}


def sandbox_container_config(settings: Settings, *, labels: dict[str, str], site_dir: str,
                             session: bool = False, tier: Tier = Tier.RUNC) -> dict[str, Any]:
    """Keyword arguments for docker's containers.create: every hardening choice, in one place.

    A session sandbox keeps one interpreter for all its executions and preloads nothing, so an idle
    session costs little memory; a stateless one preloads the heavy libraries for every job. site_dir is
    the host directory the worker installs this sandbox's packages into: read-only inside. tier picks the
    container runtime (core.isolation).
    """
    cpu_nanos = int(settings.max_cpu_percent / 100 * 1_000_000_000)
    return {
        "image": settings.docker_image,
        "runtime": DOCKER_RUNTIME[tier],
        # The worker talks to the runtime over the attach stream (stdin/stdout). An attached config
        # (detach False) with stdin_open makes docker-py set StdinOnce: the runtime's stdin closes when the
        # worker's connection drops, so an orphaned sandbox exits by itself.
        "detach": False,
        "stdin_open": True,
        "tty": False,
        "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
        "working_dir": "/workspace",
        "hostname": "sandbox",
        # No network at all, or the egress-only bridge (workers.egress: the internet, never the host, Redis,
        # other sandboxes, metadata or private ranges), which the worker set up before starting any sandbox.
        # No `dns`: Docker's embedded resolver (127.0.0.11, in a resolv.conf Docker mounts root-owned even
        # with a read-only root) forwards to the host's resolvers, which the egress rules allow on port 53.
        "network_mode": settings.egress_network if settings.enable_networking else "none",
        "read_only": True,
        "tmpfs": {
            # noexec: nothing written by user code is ever run as a program (user code starts no programs).
            # nr_inodes: a file count as well as bytes, so what the reset must remove between stateless jobs
            # (and the kernel memory empty files take) is bounded; past it, creating a file is ENOSPC.
            "/workspace": (f"rw,nosuid,nodev,noexec,size={settings.workspace_size_bytes},"
                           f"nr_inodes={settings.max_files},uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0700"),
            "/tmp": f"rw,nosuid,nodev,noexec,size={settings.tmp_size_bytes},nr_inodes={settings.max_files},mode=1777",
            # POSIX shared memory and semaphores: our own tmpfs instead of Docker's shm_size mount, which can
            # bound only bytes (a tmpfs listed here replaces it).
            "/dev/shm": f"rw,nosuid,nodev,noexec,size={SHM_SIZE_BYTES},nr_inodes={SHM_FILES},mode=1777",
        },
        # Its own IPC namespace (SysV IPC, POSIX message queues) that no other container may join, whatever
        # the daemon's default-ipc-mode: the reset removes every object in it between stateless jobs.
        "ipc_mode": "private",
        "volumes": {site_dir: {"bind": SITE_MOUNT, "mode": "ro"}},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true", f"seccomp={seccomp_profile(settings.seccomp_profile_path)}"],
        "pids_limit": settings.pids_limit,
        "mem_limit": settings.max_memory_per_session,
        "memswap_limit": settings.max_memory_per_session,  # equal to memory: no swap
        "nano_cpus": cpu_nanos,
        "ulimits": [
            Ulimit(name="fsize", soft=settings.max_file_size_bytes, hard=settings.max_file_size_bytes),
            Ulimit(name="nofile", soft=OPEN_FILES_LIMIT, hard=OPEN_FILES_LIMIT),
            Ulimit(name="core", soft=0, hard=0),
        ],
        # The runtime's stdout is our protocol: logging it would copy every job's output to disk.
        "log_config": LogConfig(type=LogConfig.types.NONE),
        "auto_remove": True,
        "environment": {
            "PENNY_MODE": "session" if session else "stateless",
            "PENNY_PRELOAD": ",".join(settings.session_preload_modules if session else settings.preload_modules),
            "PENNY_WIPE_PATHS": ":".join(WRITABLE_PATHS),
            # What the runtime refuses to user code (imports, builtins, paths): sandbox_runtime.guard.
            "PENNY_POLICY": runtime_policy(settings.policy_dir),
            # Preinstalled libraries win over installed ones (the preloaded modules are already imported).
            "PYTHONPATH": f"/opt/penny/lib:{SITE_MOUNT}/{CURRENT}:/opt/penny",
            # One BLAS thread: no thread pool to break across fork, and the CPU quota is one core anyway.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            **tier_environment(tier),
        },
        "labels": {LABEL_SANDBOX: "1", LABEL_MODE: "session" if session else "stateless", LABEL_TIER: tier.value,
                   **labels},
        **tier_options(settings, tier),
    }
