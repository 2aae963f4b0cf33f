"""Where sandboxes come from: the SandboxBackend seam, and the Docker backend behind it.

The pool, the job runner and the session manager only see `Sandbox` objects, each made of a `Container`
(what the worker can do to the container: remove it, ask whether the OOM killer ended it) and a
`SandboxChannel` (lines to and from its runtime). `DockerBackend` makes real ones; the fake backend
(workers.fake_backend) makes in-process ones, so the worker's logic is unit-tested without Docker.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import docker
import docker.errors
import requests

from core.errors import SandboxError
from core.isolation import Tier
from core.settings import Settings
from sandbox_runtime import protocol
from workers import masking
from workers.channel import AttachChannel
from workers.hardening import LABEL_POOL, LABEL_WORKER, sandbox_container_config
from workers.site import SiteDir

if TYPE_CHECKING:
    from workers.sandbox import Sandbox


class SandboxChannel(Protocol):
    """Lines to and from a sandbox's runtime."""

    closed: bool

    def send(self, message: protocol.Request) -> None: ...

    def receive(self, deadline: float) -> bytes: ...

    def received(self) -> list[bytes]: ...

    def close(self) -> None: ...


class Container(Protocol):
    """What the worker does to a sandbox's container."""

    id: str

    def remove(self) -> None:
        """Kill and remove it; never raises."""

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended it."""


class SandboxBackend(Protocol):
    """Starts sandboxes for a pool: start(pool_id, session=...) returns one that answered `ready`; tier None is
    the settings' default tier (SANDBOX_RUNTIME)."""

    def start(self, pool_id: str, *, session: bool = False, tier: Tier | None = None) -> Sandbox: ...


def limits_of(settings: Settings) -> protocol.Limits:
    """The message limits the worker enforces on every sandbox of these settings."""
    return protocol.Limits(max_plot_bytes=settings.max_plot_bytes, max_plots_bytes=settings.max_plots_bytes)


class DockerContainer:
    """A sandbox container of the local Docker engine."""

    def __init__(self, client: docker.DockerClient, container_id: str) -> None:
        self._client = client
        self.id = container_id

    def remove(self) -> None:
        try:
            self._client.api.remove_container(self.id, force=True)
        except (docker.errors.DockerException, requests.RequestException):
            pass  # auto_remove may have beaten us to it

    def oom_killed(self) -> bool:
        try:
            state = self._client.api.inspect_container(self.id)["State"]
            return bool(state.get("OOMKilled"))
        except (docker.errors.DockerException, requests.RequestException):
            return False


class DockerBackend:
    """Hardened containers of settings.docker_image, attached over the Docker API."""

    def __init__(self, client: docker.DockerClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    def start(self, pool_id: str, *, session: bool = False, tier: Tier | None = None) -> Sandbox:
        """Create, attach and start a container of tier's runtime (None: SANDBOX_RUNTIME's), then wait for its
        runtime's `ready` (cold start)."""
        from workers.sandbox import Sandbox

        settings = self._settings
        labels = {LABEL_WORKER: settings.worker_name, LABEL_POOL: pool_id}
        site_dir = Path(settings.site_root) / uuid.uuid4().hex
        site_dir.mkdir(parents=True, mode=0o755)
        SiteDir(site_dir)  # its `current` generation must exist before the interpreter looks at sys.path
        limits = limits_of(settings)
        try:
            config = sandbox_container_config(settings, labels=labels, site_dir=str(site_dir), session=session,
                                              tier=tier or settings.default_tier)
            container = masking.create_container(self._client, config)  # figures of earlier jobs hidden
            raw = self._client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                                       "stream": 1})
            channel = AttachChannel(getattr(raw, "_sock", raw), name=container.id[:12],
                                    max_line_bytes=limits.max_line_bytes)
            container.start()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            shutil.rmtree(site_dir, ignore_errors=True)
            raise SandboxError(f"cannot start a sandbox from {settings.docker_image}: {exc}") from exc
        return Sandbox(DockerContainer(self._client, container.id), channel, site_dir,
                       limits=limits).await_ready()
