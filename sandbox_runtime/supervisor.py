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


def _exit_error(wait_status: int) -> dict[str, Any]:
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0:
        message = f"the process was killed by signal {signal.Signals(-code).name}"
    else:
        message = f"the process exited with code {code} before the cell finished"
    return {"type": "ProcessExit", "message": message, "traceback": []}


class Supervisor:
    """Owns the kernel and runs one request at a time; `emit` sends events to the worker."""

    def __init__(self, *, emit: Emit, wipe_paths: list[str]) -> None:
        self._emit = emit
        self._wipe_paths = wipe_paths
        self._kernel: Kernel | None = None
        prctl(_PR_SET_DUMPABLE, 0)
        prctl(_PR_SET_CHILD_SUBREAPER, 1)

    def prepare(self) -> None:
        """Fork the next kernel ahead of its request."""
        if self._kernel is None:
            self._kernel = spawn_kernel()

    def run(self, request: dict[str, Any], control: protocol.LineReader) -> dict[str, Any]:
        """Run one exec request to its end; returns the `done` event. Reads `cancel` from control."""
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
        protocol.write_message(k.request_w, {"code": request["code"], "variables": request.get("variables")})

        selector = selectors.DefaultSelector()
        for fd in (k.stdout_r, k.stderr_r, k.result_r, k.pidfd, control.fd):
            selector.register(fd, selectors.EVENT_READ)
        status = self._handle_control(control, None)  # a cancel may have arrived with the request
        reply: dict[str, Any] | None = None
        wait_status: int | None = None
        try:
            while status is None and reply is None and wait_status is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    status = "timeout"
                    break
                for key, _ in selector.select(remaining):
                    fd = key.fd
                    if fd in relays:
                        data = os.read(fd, protocol.READ_SIZE)
                        if not data:
                            selector.unregister(fd)
                        elif not relays[fd].feed(data):
                            status = "output_limit"
                    elif fd == k.result_r:
                        results.fill()
                        reply = results.pop()
                        if results.closed and reply is None:
                            selector.unregister(fd)
                    elif fd == k.pidfd:
                        _, wait_status = os.waitpid(k.pid, 0)
                        k.reaped = True
                    elif fd == control.fd:
                        control.fill()
                        status = self._handle_control(control, status)
                        if control.closed:
                            selector.unregister(fd)
            if status is None:
                self._drain(relays)
        finally:
            selector.close()
        if status is not None:
            self._signal_kernel()  # stopped: kill now, reap in reset()
        for relay in relays.values():
            relay.finish()
        duration_ms = int((time.monotonic() - started) * 1000)
        return self._done(status, reply, wait_status, oom_before, relays, duration_ms)

    def _handle_control(self, control: protocol.LineReader, status: str | None) -> str | None:
        """Act on the control messages already read: cancel, ping."""
        while (message := control.pop()) is not None:
            if message.get("op") == "cancel":
                status = "cancelled"
            elif message.get("op") == "ping":
                self._emit({"ev": "pong"})
        if control.closed:
            status = "cancelled"  # the worker is gone: nobody wants this result
        return status

    def _drain(self, relays: dict[int, OutputRelay]) -> None:
        """Read whatever output is already in the pipes (the kernel flushed before replying)."""
        for fd, relay in relays.items():
            os.set_blocking(fd, False)
            try:
                while (data := os.read(fd, protocol.READ_SIZE)) and relay.feed(data):
                    pass
            except BlockingIOError:
                pass

    def _signal_kernel(self) -> None:
        assert self._kernel is not None
        try:
            os.kill(self._kernel.pid, signal.SIGKILL)
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
            else:
                assert wait_status is not None  # no reply and not stopped: the kernel exited
                oom_after = oom_kill_count()
                killed = os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGKILL
                oom = killed and (oom_before is None or oom_after is None or oom_after > oom_before)
                status = "memory_exceeded" if oom else "error"
                error = ({"type": "MemoryError", "message": "the sandbox ran out of memory", "traceback": []}
                         if oom else _exit_error(wait_status))
        return {
            "ev": "done",
            "status": status,
            "result": reply.get("result") if reply else None,
            "error": error,
            "truncated": truncated,
            "cpu_ms": int(reply["cpu_ms"]) if reply else 0,
            "peak_memory_bytes": int(reply["peak_memory_bytes"]) if reply else 0,
            "duration_ms": duration_ms,
        }

    def reset(self) -> list[str]:
        """After a job: kill every other process, wipe the writable paths, fork the next kernel."""
        if self._kernel is not None:
            if not self._kernel.reaped:
                self._signal_kernel()
                os.waitpid(self._kernel.pid, 0)
            self._kernel.close()
            self._kernel = None
        cleanup.kill_all_others()
        survivors = cleanup.wipe(self._wipe_paths)
        self.prepare()
        return survivors
