"""One warm sandbox: its runtime's channel, the container behind it, and the limits the worker enforces.

Everything the runtime sends is decoded by sandbox_runtime.protocol and checked again here against the
job's own limits (output bytes per stream, plot bytes per plot and in total, number of messages, the
request id): a runtime that breaks any of them has been tampered with, so the job ends `error` and the
sandbox is destroyed, never reused.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from core.errors import SandboxError
from sandbox_runtime import decoding, protocol
from workers.backend import Container, SandboxChannel
from workers.channel import ChannelClosed, ChannelTimeout, InvalidMessage
from workers.site import SiteDir

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
# How long past the job's own timeout we wait for the runtime before killing the container.
RUNTIME_GRACE_S = 3.0
# How long the runtime may take to confirm its reset after a job (a wipe of a full tmpfs included).
RESET_TIMEOUT_S = 30.0
MAX_RICH_ITEMS = 1_000
INVALID_MESSAGE = "the sandbox sent an invalid message"

OnOutput = Callable[[str, str], None]
OnRich = Callable[[str, dict], None]


class Sandbox:
    """A started container whose runtime answered `ready`; runs one request at a time."""

    def __init__(self, container: Container, channel: SandboxChannel, site_dir: Path, *,
                 limits: protocol.Limits) -> None:
        self.container = container
        self._channel = channel
        self.site_dir = site_dir
        self.site = SiteDir(site_dir)  # what the runtime imports from, swapped in per install
        self.limits = limits
        # Distributions importable in the sandbox (canonical name -> version): the image's, and all.
        self.preinstalled: dict[str, str] = {}
        self.packages: dict[str, str] = {}
        self.jobs_run = 0
        self.healthy = True
        self.reset_pending = False
        self._backlog: deque[bytes] = deque()  # lines read past the end of a request (its reset)

    def _next_line(self, deadline: float) -> bytes:
        return self._backlog.popleft() if self._backlog else self._channel.receive(deadline)

    def _lines(self, deadline: float) -> list[bytes]:
        """The next line (waiting until deadline) and every line already received after it."""
        first = self._next_line(deadline)
        lines = [first, *self._backlog, *self._channel.received()]
        self._backlog.clear()
        return lines

    @property
    def container_id(self) -> str:
        return self.container.id

    @property
    def short_id(self) -> str:
        return self.container.id[:12]

    def await_ready(self, timeout_s: float = READY_TIMEOUT_S) -> Sandbox:
        """Wait for the runtime's `ready` (a cold start); destroys the sandbox and raises if it fails."""
        try:
            event = decoding.decode_event(self._next_line(time.monotonic() + timeout_s), self.limits)
        except (SandboxError, protocol.ProtocolError) as exc:
            self.destroy()
            raise SandboxError(f"sandbox {self.short_id} did not start: {exc}") from exc
        if not isinstance(event, protocol.Ready):
            self.destroy()
            raise SandboxError(f"sandbox {self.short_id} said {type(event).__name__} instead of ready")
        self.preinstalled = dict(event.packages)
        self.packages = dict(self.preinstalled)
        if event.preload_failed:
            log.warning("sandbox %s could not preload %s", self.short_id, event.preload_failed)
        return self

    def send(self, request: protocol.Exec) -> None:
        """Hand one exec request to the runtime; collect() then reads its events."""
        self.jobs_run += 1
        self.reset_pending = True
        self._channel.send(request)

    def collect(self, request: protocol.Exec, on_output: OnOutput,
                on_rich: OnRich | None = None, *, on_last_output: OnOutput | None = None) -> protocol.Done:
        """Read the running request's events, calling on_output(stream, text) and on_rich(kind, data);
        returns its `done`.

        Output already received is merged per stream before on_output is called, so a flood of small
        prints becomes a few large events. Output that arrived together with the `done` goes to
        on_last_output instead, when given (the job's result is stored with it in one step). If the
        runtime does not answer within the request's timeout plus a grace period, its channel breaks, or
        it sends anything invalid, the container is destroyed and a `done` saying so is returned.
        """
        deadline = time.monotonic() + request.timeout_ms / 1000 + RUNTIME_GRACE_S
        budget = _Budget(request)
        try:
            while True:
                lines = self._lines(deadline)
                pending_stream, pending_text = "", list[str]()
                for index, line in enumerate(lines):
                    event = decoding.decode_event(line, self.limits)
                    budget.check(event)
                    if isinstance(event, protocol.Output):
                        if event.stream != pending_stream and pending_text:
                            on_output(pending_stream, "".join(pending_text))
                            pending_text = []
                        pending_stream = event.stream
                        pending_text.append(event.text)
                        continue
                    if pending_text:
                        last = isinstance(event, protocol.Done) and on_last_output is not None
                        deliver = on_last_output if last and on_last_output is not None else on_output
                        deliver(pending_stream, "".join(pending_text))
                        pending_text = []
                    if isinstance(event, protocol.Plot | protocol.Display) and on_rich is not None:
                        on_rich("plot" if isinstance(event, protocol.Plot) else "display", event.data)
                    elif isinstance(event, protocol.Done):
                        self._backlog.extend(lines[index + 1:])  # the reset that follows
                        return budget.finish(event)
                    elif isinstance(event, protocol.Fatal):
                        raise SandboxError(f"sandbox {self.short_id}: {event.message}")
                if pending_text:
                    on_output(pending_stream, "".join(pending_text))
        except ChannelTimeout:
            self.destroy()
            return failure_done(request.id, "timeout", "TimeoutError", "the sandbox did not answer in time")
        except (protocol.ProtocolError, InvalidMessage) as exc:
            log.error("sandbox %s: %s: %s", self.short_id, INVALID_MESSAGE, exc)
            self.destroy()
            return failure_done(request.id, "error", "InvalidSandboxMessage", INVALID_MESSAGE)
        except (ChannelClosed, SandboxError) as exc:
            oom = self.container.oom_killed()
            self.destroy()
            if oom:
                return failure_done(request.id, "memory_exceeded", "MemoryError", "the sandbox ran out of memory")
            return failure_done(request.id, "error", "SandboxError", f"the sandbox failed: {exc}")

    def call(self, request: protocol.Restart | protocol.FileRequest, timeout_s: float) -> protocol.Event:
        """Send a request the runtime answers with one event (a restart, a file request) and return that
        event, checked: it must be a `done` (restart) or `file` reply carrying the request's id. Anything
        else, or nothing in time, destroys the sandbox and raises SandboxError."""
        expected = protocol.Done if isinstance(request, protocol.Restart) else protocol.FileReply
        try:
            self._channel.send(request)
            while True:
                event = decoding.decode_event(self._next_line(time.monotonic() + timeout_s), self.limits)
                if isinstance(event, protocol.Pong):
                    continue  # the answer to a liveness check sent earlier
                if not isinstance(event, expected) or event.id != request.id:
                    raise protocol.ProtocolError(f"{type(event).__name__} in answer to {type(request).__name__}")
                return event
        except (SandboxError, protocol.ProtocolError) as exc:
            log.error("sandbox %s: %s", self.short_id, exc)
            self.destroy()
            raise SandboxError(f"sandbox {self.short_id} failed: {exc}") from exc

    def confirm_reset(self, timeout_s: float = RESET_TIMEOUT_S) -> bool:
        """After a stateless job: wait for the runtime's `reset`; False (and destroyed) unless it is clean."""
        if not self.reset_pending:
            return self.healthy
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                event = decoding.decode_event(self._next_line(deadline), self.limits)
                if isinstance(event, protocol.Pong):
                    continue
                if isinstance(event, protocol.Reset) and event.ok:
                    self.reset_pending = False
                    return True
                log.error("sandbox %s failed its reset: %s", self.short_id, event)
                break
        except (SandboxError, protocol.ProtocolError, OSError) as exc:
            # OSError: its channel was closed under it (EBADF: destroyed while idle in the pool, seen on the
            # gVisor tier); a replacement is started rather than the job failing.
            log.error("sandbox %s failed its reset: %s", self.short_id, exc)
        self.destroy()
        return False

    def release(self) -> None:
        """End a held stateless request (its output files were read): the runtime resets the sandbox now."""
        try:
            self._channel.send(protocol.Release())
        except ChannelClosed:
            self.healthy = False

    def request_cancel(self) -> None:
        """Ask the runtime to kill the running code (from the cancel listener's thread)."""
        try:
            self._channel.send(protocol.Cancel())
        except ChannelClosed:
            pass

    def destroy(self) -> None:
        """Kill and remove the container; never raises (it is also cleanup after failures)."""
        self.healthy = False
        self._channel.close()
        self.container.remove()
        shutil.rmtree(self.site_dir, ignore_errors=True)  # written only by this worker, never by the sandbox


@dataclass
class _Budget:
    """The worker's own count of what one request produced, against the request's limits."""

    request: protocol.Exec
    output_chars: dict[str, int] | None = None
    plots_bytes: int = 0
    rich_items: int = 0
    messages: int = 0

    def check(self, event: protocol.Event) -> None:
        """Raise ProtocolError if event does not belong in a running request or passes a limit."""
        request = self.request
        self.messages += 1
        if self.messages > 2 * request.output_limit_bytes + 2 * MAX_RICH_ITEMS + 16:
            raise protocol.ProtocolError("too many messages")
        if isinstance(event, protocol.Output):
            counts = self.output_chars = self.output_chars or {"stdout": 0, "stderr": 0}
            counts[event.stream] += len(event.text)
            if counts[event.stream] > request.output_limit_bytes:
                raise protocol.ProtocolError(f"{event.stream} over the {request.output_limit_bytes}-byte limit")
        elif isinstance(event, protocol.Plot | protocol.Display):
            size = event.size()
            self.plots_bytes += size
            self.rich_items += 1
            if (size > request.max_plot_bytes or self.plots_bytes > request.max_plots_bytes
                    or self.rich_items > MAX_RICH_ITEMS):
                raise protocol.ProtocolError("rich output over its limits")
        elif isinstance(event, protocol.Ready | protocol.Reset):
            raise protocol.ProtocolError(f"{type(event).__name__} while a request runs")

    def finish(self, done: protocol.Done) -> protocol.Done:
        """Check the `done` itself: it must answer this request."""
        if done.id != self.request.id:
            raise protocol.ProtocolError("a done for another request")
        if done.result is not None and protocol.Display(done.result).size() > self.request.max_plot_bytes + 2 * \
                protocol.MAX_TEXT_CHARS:
            raise protocol.ProtocolError("the value is over its limit")
        return done


@dataclass(frozen=True)
class ServiceDone(protocol.Done):
    """A `done` the worker made itself: only its error type may be a service's name in the audit trail
    (core.error_types). Nothing decoded from a sandbox is one."""


def failure_done(request_id: str, status: str, error_type: str, message: str) -> protocol.Done:
    """A `done` for a run our machinery ended (the runtime could not report it)."""
    return ServiceDone(id=request_id, status=status,
                         error={"type": error_type, "message": message, "traceback": []})


def with_state(done: protocol.Done, state: str) -> protocol.Done:
    """done, saying what became of a session's interpreter."""
    return replace(done, state=state)
