"""An in-process SandboxBackend for unit tests: sandboxes whose "runtime" is a Python function.

A FakeRuntime gets each request the worker sends and answers with protocol lines, as the real runtime
would (or, in a test, as a hostile or broken one would): the worker's own code — decoding, limits, the
pool, the runner, the session manager — runs unchanged on top of it, without Docker.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.isolation import Tier
from sandbox_runtime import protocol
from workers.channel import ChannelClosed, ChannelTimeout
from workers.sandbox import Sandbox

# Answers one request with the lines the runtime would send (a stateless job: its done, then a reset).
Behaviour = Callable[[protocol.Request, "FakeRuntime"], list[bytes]]


def line(event: protocol.Event) -> bytes:
    """An event as the runtime sends it, without the newline."""
    return protocol.encode(event).rstrip(b"\n")


def well_behaved(request: protocol.Request, runtime: FakeRuntime) -> list[bytes]:
    """What a correct runtime answers: stdout, a done, and (stateless) a successful reset."""
    if not isinstance(request, protocol.Exec):
        return []
    answer = [line(protocol.Output("stdout", f"ran {request.id}\n")),
              line(protocol.Done(id=request.id, status="success", state="kept" if runtime.session else None))]
    return answer if runtime.session else [*answer, line(protocol.Reset(ok=True))]


@dataclass
class FakeContainer:
    """A container that only records what was done to it."""

    id: str
    removed: bool = False
    oom: bool = False

    def remove(self) -> None:
        self.removed = True

    def oom_killed(self) -> bool:
        return self.oom


@dataclass
class FakeRuntime:
    """The runtime's side of a FakeChannel: `behaviour` answers each request."""

    behaviour: Behaviour
    session: bool = False
    requests: list[protocol.Request] = field(default_factory=list)


class FakeChannel:
    """A SandboxChannel whose lines come from a FakeRuntime; silence is a timeout, as with a real one."""

    def __init__(self, runtime: FakeRuntime) -> None:
        self.runtime = runtime
        self.closed = False
        self.fail_send: Exception | None = None
        self._lines: deque[bytes] = deque()
        self._arrived = threading.Condition()

    def send(self, message: protocol.Request) -> None:
        if self.closed:
            raise ChannelClosed("the fake channel is closed")
        if self.fail_send is not None:
            raise self.fail_send
        self.runtime.requests.append(message)
        answer = self.runtime.behaviour(message, self.runtime)
        with self._arrived:
            self._lines.extend(answer)
            self._arrived.notify_all()

    def receive(self, deadline: float) -> bytes:
        with self._arrived:
            while not self._lines:
                if self.closed:
                    raise ChannelClosed("the fake channel is closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelTimeout("the fake runtime said nothing")
                self._arrived.wait(min(remaining, 0.05))
            return self._lines.popleft()

    def received(self) -> list[bytes]:
        with self._arrived:
            lines, self._lines = list(self._lines), deque()
            return lines

    def close(self) -> None:
        self.closed = True


class FakeBackend:
    """Starts fake sandboxes; each gets behaviour_for(index) (well_behaved unless a test says otherwise)."""

    def __init__(self, root: Path, *, limits: protocol.Limits | None = None,
                 behaviour_for: Callable[[int], Behaviour] = lambda _index: well_behaved) -> None:
        self._root = root
        self._limits = limits or protocol.Limits()
        self._behaviour_for = behaviour_for
        self._counter = itertools.count()
        self.started: list[Sandbox] = []
        self.tier_of: dict[str, Tier] = {}  # container id -> the tier it was started for
        self.fail_start: Exception | None = None

    def start(self, pool_id: str, *, session: bool = False, tier: Tier | None = None) -> Sandbox:
        if self.fail_start is not None:
            raise self.fail_start
        index = next(self._counter)
        site_dir = self._root / f"site-{index}"
        site_dir.mkdir(parents=True)
        runtime = FakeRuntime(self._behaviour_for(index), session=session)
        channel = FakeChannel(runtime)
        channel._lines.append(line(protocol.Ready(pid=1, python="3.11", preload_failed={},
                                                  packages={"numpy": "2.0.0"})))
        sandbox = Sandbox(FakeContainer(f"fake{index:08d}{pool_id}"), channel, site_dir, limits=self._limits)
        self.started.append(sandbox.await_ready(1.0))
        self.tier_of[sandbox.container_id] = tier or Tier.RUNC
        return sandbox
