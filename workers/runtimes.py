"""The Docker runtimes a worker's isolation tiers need, checked before it starts.

Every worker host serves every tier the settings name (core.isolation), each from sandboxes created with
that tier's Docker runtime. A host whose dockerd lacks one would fill that tier's pools with failed starts
and leave its tenants' jobs waiting, so the worker refuses to start instead, naming the runtime and how to
install it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from core.errors import ConfigError
from core.isolation import DOCKER_RUNTIME, Tier

# How to give dockerd each tier's runtime (runc comes with Docker itself).
INSTALL_HINT: dict[Tier, str] = {
    Tier.RUNC: "reinstall Docker (its default runtime runc is missing)",
    Tier.GVISOR: "install gVisor and register it with dockerd: `make gvisor` (deploy/scripts/ensure_gvisor.sh "
                 "installs Debian's runsc and adds the runtime `runsc` to /etc/docker/daemon.json, then "
                 "reloads dockerd)",
}


class DockerInfo(Protocol):
    """The part of docker's DockerClient used here: `docker info` as a dict."""

    def info(self) -> dict[str, Any]: ...


def missing_runtimes(runtimes: Mapping[str, Any], tiers: Iterable[Tier]) -> list[Tier]:
    """The tiers whose Docker runtime is not among `runtimes` (`docker info`'s Runtimes), in order."""
    return [tier for tier in tiers if DOCKER_RUNTIME[tier] not in runtimes]


def check_runtimes(client: DockerInfo, tiers: Iterable[Tier]) -> None:
    """Raise ConfigError naming each tier whose runtime Docker does not have, and how to install it."""
    runtimes = client.info().get("Runtimes") or {}
    missing = missing_runtimes(runtimes, tiers)
    if not missing:
        return
    have = ", ".join(sorted(runtimes)) or "none"
    problems = "; ".join(
        f"the {tier.value} isolation tier needs Docker's runtime {DOCKER_RUNTIME[tier]!r}, which this Docker does "
        f"not have (its runtimes: {have}): {INSTALL_HINT[tier]}" for tier in missing)
    raise ConfigError(f"{problems}. Or leave the tier out of SANDBOX_RUNTIME and TENANT_ISOLATION.")
