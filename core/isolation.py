"""Isolation tiers: which container runtime runs a tenant's sandboxes.

`runc` shares the host's kernel (seccomp, namespaces, cgroups and the runtime's own layers between user code
and it); `gvisor` runs the sandbox under gVisor's runsc, a user-space kernel between user code and the host's.
SANDBOX_RUNTIME (`runc` or `runsc`) is the tier of every tenant without an entry in TENANT_ISOLATION
(`tenant:tier,...`). Every worker host serves every tier the settings name, each from its own warm pools.
"""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    """An isolation tier, named as results, sessions and the audit trail report it."""

    RUNC = "runc"
    GVISOR = "gvisor"


# The Docker runtime (dockerd's --add-runtime / daemon.json "runtimes" name) of each tier.
DOCKER_RUNTIME: dict[Tier, str] = {Tier.RUNC: "runc", Tier.GVISOR: "runsc"}
TIER_OF_RUNTIME: dict[str, Tier] = {runtime: tier for tier, runtime in DOCKER_RUNTIME.items()}
