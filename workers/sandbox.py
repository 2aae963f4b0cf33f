"""One warm sandbox: a hardened container, its runtime, and the channel to it."""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from core.errors import SandboxError
from core.settings import Settings
from workers.channel import AttachChannel, ChannelClosed, ChannelTimeout
from workers.hardening import LABEL_POOL, LABEL_WORKER, sandbox_container_config

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
# How long past the job's own timeout we wait for the runtime before killing the container.
RUNTIME_GRACE_S = 3.0

OnOutput = Callable[[str, str], None]
OnRich = Callable[[str, dict[str, Any]], None]


class Sandbox:
    """A started container whose runtime answered `ready`; execute() runs one request at a time."""

    def __init__(self, client: docker.DockerClient, container_id: str, channel: AttachChannel,
                 site_dir: Path) -> None:
        self._client = client
        self.container_id = container_id
        self._channel = channel
        self.site_dir = site_dir
        # Distributions importable in the sandbox (canonical name -> version): the image's, and all.
        self.preinstalled: dict[str, str] = {}
        self.packages: dict[str, str] = {}
        self.jobs_run = 0
        self.healthy = True

    @property
    def short_id(self) -> str:
        return self.container_id[:12]

    @classmethod
    def start(cls, client: docker.DockerClient, settings: Settings, *, pool_id: str,
              session: bool = False) -> Sandbox:
        """Create, attach and start a container, then wait for its runtime's `ready` (cold start)."""
        labels = {LABEL_WORKER: settings.worker_name, LABEL_POOL: pool_id}
        site_dir = Path(settings.site_root) / uuid.uuid4().hex
        site_dir.mkdir(parents=True, mode=0o755)
        try:
            config = sandbox_container_config(settings, labels=labels, site_dir=str(site_dir), session=session)
            container = client.containers.create(**config)
            raw = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1,
                                                                 "stream": 1})
            channel = AttachChannel(getattr(raw, "_sock", raw), name=container.id[:12])
            container.start()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            shutil.rmtree(site_dir, ignore_errors=True)
            raise SandboxError(f"cannot start a sandbox from {settings.docker_image}: {exc}") from exc
        sandbox = cls(client, container.id, channel, site_dir)
        try:
            ready = channel.receive(time.monotonic() + READY_TIMEOUT_S)
        except SandboxError:
            sandbox.destroy()
            raise
        if ready.get("ev") != "ready":
            sandbox.destroy()
            raise SandboxError(f"sandbox {sandbox.short_id} said {ready!r} instead of ready")
        sandbox.preinstalled = dict(ready.get("packages") or {})
        sandbox.packages = dict(sandbox.preinstalled)
        if ready.get("preloadFailed"):
            log.warning("sandbox %s could not preload %s", sandbox.short_id, ready["preloadFailed"])
        return sandbox

    def send(self, request: dict[str, Any]) -> None:
        """Hand one exec request to the runtime; collect() then reads its events."""
        self.jobs_run += 1
        self._channel.send(request)

    def collect(self, timeout_ms: int, on_output: OnOutput, on_rich: OnRich | None = None) -> dict[str, Any]:
        """Read the running request's events, calling on_output(stream, text) and on_rich(kind, data)
        for plots and displays; returns `done`.

        Output already received is merged per stream before on_output is called, so a flood of small
        prints becomes a few large events. If the runtime does not answer within timeout_ms plus a grace
        period, or its channel breaks, the container is destroyed and a `done` saying so is returned.
        """
        deadline = time.monotonic() + timeout_ms / 1000 + RUNTIME_GRACE_S
        try:
            while True:
                batch = [self._channel.receive(deadline), *self._channel.received()]
                pending_stream, pending_text = "", list[str]()
                for message in batch:
                    event = message.get("ev")
                    if event in ("stdout", "stderr"):
                        if event != pending_stream and pending_text:
                            on_output(pending_stream, "".join(pending_text))
                            pending_text = []
                        pending_stream = event
                        pending_text.append(message["text"])
                        continue
                    if pending_text:
                        on_output(pending_stream, "".join(pending_text))
                        pending_text = []
                    if event in ("plot", "display") and on_rich is not None:
                        on_rich(event, message["data"])
                    if event == "done":
                        return message
                    if event == "fatal":
                        raise SandboxError(f"sandbox {self.short_id}: {message.get('message')}")
                if pending_text:
                    on_output(pending_stream, "".join(pending_text))
        except ChannelTimeout:
            self.destroy()
            return failure_done("timeout", "TimeoutError", "the sandbox did not answer in time")
        except (ChannelClosed, SandboxError) as exc:
            oom = self._was_oom_killed()
            self.destroy()
            if oom:
                return failure_done("memory_exceeded", "MemoryError", "the sandbox ran out of memory")
            return failure_done("error", "SandboxError", f"the sandbox failed: {exc}")

    def request_cancel(self) -> None:
        """Ask the runtime to kill the running code (from the cancel listener's thread)."""
        try:
            self._channel.send({"op": "cancel"})
        except ChannelClosed:
            pass

    def _was_oom_killed(self) -> bool:
        try:
            state = self._client.api.inspect_container(self.container_id)["State"]
            return bool(state.get("OOMKilled"))
        except (docker.errors.DockerException, requests.RequestException):
            return False

    def destroy(self) -> None:
        """Kill and remove the container; never raises (it is also cleanup after failures)."""
        self.healthy = False
        self._channel.close()
        try:
            self._client.api.remove_container(self.container_id, force=True)
        except (docker.errors.DockerException, requests.RequestException):
            pass  # auto_remove may have beaten us to it
        shutil.rmtree(self.site_dir, ignore_errors=True)  # written only by this worker, never by the sandbox


def failure_done(status: str, error_type: str, message: str) -> dict[str, Any]:
    """A `done` event for a run our machinery ended (the runtime could not report it)."""
    return {"ev": "done", "status": status, "result": None, "truncated": False, "cpu_ms": 0,
            "peak_memory_bytes": 0, "duration_ms": 0,
            "error": {"type": error_type, "message": message, "traceback": []}}
