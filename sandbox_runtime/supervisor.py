"""The supervisor: runs each request in a forked kernel and enforces the time and output limits.

Isolation between stateless jobs (the mechanism, documented in the README): the supervisor imports the
heavy libraries once, then forks a fresh kernel per job *before* the job arrives (so the fork is off the
request path). After the job it kills every other process in the container, wipes the writable paths and
forks the next kernel, all before it reads the next request: no process, file or variable of one job is
visible to the next. The supervisor is PID 1 of the container's PID namespace (user code cannot signal it)
and not dumpable (user code, same uid, cannot ptrace it or read its memory or fds).
"""

from __future__ import annotations

import codecs
import ctypes
import os
import selectors
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox_runtime import cleanup, kernel, protocol

Emit = Callable[[dict[str, Any]], None]

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_OOM_CONTROL = "/sys/fs/cgroup/memory/memory.oom_control"
_MEMORY_EVENTS = "/sys/fs/cgroup/memory.events"
# How long an interrupted session kernel has to reply before it is killed (and its state lost).
INTERRUPT_GRACE_S = 2.0
INTERRUPT_REPEAT_S = 0.1


def prctl(option: int, value: int) -> bool:
    """Call prctl(2); False when it is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def oom_kill_count() -> int | None:
    """How many processes the container's cgroup OOM killer has killed, if the kernel tells us."""
    for path in (_OOM_CONTROL, _MEMORY_EVENTS):
        try:
            with open(path) as handle:
                for line in handle:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


@dataclass
class Kernel:
    """A forked kernel process and our ends of its pipes."""

    pid: int
    pidfd: int
    request_w: int
    result_r: int
    stdout_r: int
    stderr_r: int
    reaped: bool = False

    def close(self) -> None:
        for fd in (self.pidfd, self.request_w, self.result_r, self.stdout_r, self.stderr_r):
            try:
                os.close(fd)
            except OSError:
                pass


def spawn_kernel() -> Kernel:
    """Fork a kernel waiting for its first request."""
    request_r, request_w = os.pipe()
    result_r, result_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the kernel
        try:
            prctl(_PR_SET_DUMPABLE, 1)  # its own /proc entries stay usable by the user's code
            kernel.setup_child_fds(request_r, result_w, stdout_w, stderr_w)
            kernel.kernel_main()
        finally:
            os._exit(70)
    for fd in (request_r, result_w, stdout_w, stderr_w):
        os.close(fd)
    return Kernel(pid, os.pidfd_open(pid), request_w, result_r, stdout_r, stderr_r)


class OutputRelay:
    """Turns a stream's bytes into text events, keeping the head when the byte limit is passed."""

    def __init__(self, name: str, limit_bytes: int, emit: Emit) -> None:
        self.name = name
        self.limit_bytes = limit_bytes
        self.sent_bytes = 0
        self.truncated = False
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> bool:
        """Relay data; returns False once the limit is passed (the rest is dropped)."""
        room = self.limit_bytes - self.sent_bytes
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.sent_bytes += len(data)
        text = self._decoder.decode(data)
        if text:
            self._emit({"ev": self.name, "text": text})
        return not self.truncated

    def finish(self) -> None:
        text = self._decoder.decode(b"", final=True)
        if text:
            self._emit({"ev": self.name, "text": text})


def _lost_done() -> dict[str, Any]:
    return {"ev": "done", "status": "error", "result": None, "truncated": False, "cpu_ms": 0,
            "peak_memory_bytes": 0, "duration_ms": 0, "variables": {}, "state": "lost",
            "error": {"type": "SessionLost", "message": "this session's interpreter was lost", "traceback": []}}


def _exit_error(wait_status: int) -> dict[str, Any]:
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0:
        message = f"the process was killed by signal {signal.Signals(-code).name}"
    else:
        message = f"the process exited with code {code} before the cell finished"
    return {"type": "ProcessExit", "message": message, "traceback": []}


class Supervisor:
    """Owns the kernel and runs one request at a time; `emit` sends events to the worker."""

    def __init__(self, *, emit: Emit, wipe_paths: list[str], keep_state: bool = False) -> None:
        self._emit = emit
        self._wipe_paths = wipe_paths
        self._keep_state = keep_state
        self._lost = False
        self._kernel: Kernel | None = None
        prctl(_PR_SET_DUMPABLE, 0)
        prctl(_PR_SET_CHILD_SUBREAPER, 1)

    def prepare(self) -> None:
        """Fork the next kernel ahead of its request."""
        if self._kernel is None:
            self._kernel = spawn_kernel()

    def run(self, request: dict[str, Any], control: protocol.LineReader) -> dict[str, Any]:
        """Run one exec request to its end; returns the `done` event. Reads `cancel` from control.

        A run stops early on timeout, output over the limit, or cancel. A stateless kernel is then
        killed. A session kernel is interrupted first (SIGINT, as a notebook does); if it replies within
        INTERRUPT_GRACE_S its state is kept, otherwise it is killed and the state is lost.
        """
        if self._lost:
            return _lost_done()
        self.prepare()
        assert self._kernel is not None
        k = self._kernel
        started = time.monotonic()
        deadline = started + int(request["timeout_ms"]) / 1000
        limit = int(request["output_limit_bytes"])
        relays = {k.stdout_r: OutputRelay("stdout", limit, self._emit),
                  k.stderr_r: OutputRelay("stderr", limit, self._emit)}
        results = protocol.LineReader(k.result_r)
        oom_before = oom_kill_count()
        protocol.write_message(k.request_w, {key: request[key] for key in (
            "code", "variables", "plot_formats", "max_plot_bytes", "max_plots_bytes") if key in request})

        selector = selectors.DefaultSelector()
        for fd in (k.stdout_r, k.stderr_r, k.result_r, k.pidfd, control.fd):
            selector.register(fd, selectors.EVENT_READ)
        status: str | None = None
        reply: dict[str, Any] | None = None
        wait_status: int | None = None
        interrupted = killed = False

        def stop(reason: str) -> None:
            nonlocal status, deadline, interrupted, killed
            status = status or reason
            if self._keep_state and not interrupted and not control.closed:
                interrupted = True
                deadline = time.monotonic() + INTERRUPT_GRACE_S
                self._signal_kernel(signal.SIGINT)
            else:
                killed = True
                self._signal_kernel(signal.SIGKILL)

        if self._cancel_requested(control):  # a cancel may have arrived together with the request
            stop("cancelled")
        try:
            while reply is None and wait_status is None and not killed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stop("timeout")  # first the interrupt (sessions), then, past the grace, the kill
                    continue
                if interrupted:
                    # Repeat the interrupt: one sent before the cell started was ignored by the kernel.
                    self._signal_kernel(signal.SIGINT)
                    remaining = min(remaining, INTERRUPT_REPEAT_S)
                for key, _ in selector.select(remaining):
                    fd = key.fd
                    if fd in relays:
                        data = os.read(fd, protocol.READ_SIZE)
                        if not data:
                            selector.unregister(fd)
                        elif not relays[fd].feed(data) and status is None:
                            stop("output_limit")
                    elif fd == k.result_r:
                        results.fill()
                        while reply is None and (message := results.pop()) is not None:
                            if message.get("kind") == "result":
                                reply = message
                            elif message.get("kind") in ("plot", "display"):
                                self._emit({"ev": message["kind"], "data": message[message["kind"]]})
                        if results.closed and reply is None:
                            selector.unregister(fd)
                    elif fd == k.pidfd:
                        _, wait_status = os.waitpid(k.pid, 0)
                        k.reaped = True
                    elif fd == control.fd:
                        control.fill()
                        if control.closed:
                            selector.unregister(fd)
                            stop("cancelled")  # the worker is gone: nobody wants this result
                        elif self._cancel_requested(control) and status is None:
                            stop("cancelled")
            self._drain(relays)
        finally:
            selector.close()
        for relay in relays.values():
            relay.finish()
        duration_ms = int((time.monotonic() - started) * 1000)
        if self._keep_state and (reply is None or killed):
            self._lost = True  # the session's interpreter is gone with its state
        return self._done(status, reply, wait_status, oom_before, relays, duration_ms)

    def _cancel_requested(self, control: protocol.LineReader) -> bool:
        """Act on the control messages already read; True if one of them was a cancel."""
        cancelled = False
        while (message := control.pop()) is not None:
            if message.get("op") == "cancel":
                cancelled = True
            elif message.get("op") == "ping":
                self._emit({"ev": "pong"})
        return cancelled

    def _drain(self, relays: dict[int, OutputRelay]) -> None:
        """Read whatever output is already in the pipes (the kernel flushed before replying)."""
        for fd, relay in relays.items():
            os.set_blocking(fd, False)
            try:
                while (data := os.read(fd, protocol.READ_SIZE)) and relay.feed(data):
                    pass
            except BlockingIOError:
                pass

    def _signal_kernel(self, sig: int = signal.SIGKILL) -> None:
        assert self._kernel is not None
        if self._kernel.reaped:
            return
        try:
            os.kill(self._kernel.pid, sig)
        except ProcessLookupError:
            pass

    def _done(self, status: str | None, reply: dict[str, Any] | None, wait_status: int | None,
              oom_before: int | None, relays: dict[int, OutputRelay], duration_ms: int) -> dict[str, Any]:
        truncated = any(relay.truncated for relay in relays.values())
        error = reply.get("error") if reply else None
        if status is None:
            if reply is not None:
                is_memory_error = bool(error and error.get("type") == "MemoryError")
                status = "memory_exceeded" if is_memory_error else ("error" if error else "success")
                if reply.get("violation"):
                    status = "policy_violation"  # also when the code caught the exception
            else:
                assert wait_status is not None  # no reply and not stopped: the kernel exited
                oom_after = oom_kill_count()
                killed = os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGKILL
                oom = killed and (oom_before is None or oom_after is None or oom_after > oom_before)
                status = "memory_exceeded" if oom else "error"
                error = ({"type": "MemoryError", "message": "the sandbox ran out of memory", "traceback": []}
                         if oom else _exit_error(wait_status))
        done = {
            "ev": "done",
            "status": status,
            "result": reply.get("result") if reply else None,
            "error": error,
            "truncated": truncated,
            "cpu_ms": int(reply["cpu_ms"]) if reply else 0,
            "peak_memory_bytes": int(reply["peak_memory_bytes"]) if reply else 0,
            "duration_ms": duration_ms,
            "disk_bytes": cleanup.disk_usage_bytes(self._wipe_paths),
            "variables": reply.get("variables", {}) if reply else {},
            "notes": reply.get("notes", []) if reply else [],
            "violation": reply.get("violation") if reply else None,
        }
        if self._keep_state:
            done["state"] = "lost" if self._lost else "kept"
        return done

    def reset(self) -> list[str]:
        """After a stateless job: kill every other process, wipe the writable paths, fork the next kernel.

        A session keeps its kernel, files and processes; once its kernel is lost nothing is re-created.
        """
        if self._keep_state and (self._lost or self._kernel is not None):
            return []
        if self._kernel is not None:
            if not self._kernel.reaped:
                self._signal_kernel()
                os.waitpid(self._kernel.pid, 0)
            self._kernel.close()
            self._kernel = None
        cleanup.kill_all_others()
        survivors = cleanup.wipe(self._wipe_paths)
        cleanup.reseed_image_caches()
        self.prepare()
        return survivors
