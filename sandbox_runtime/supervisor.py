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
import contextlib
import ctypes
import dataclasses
import os
import select
import selectors
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sandbox_runtime import child_exit, cleanup, decoding, guard, kernel, protocol, seccomp_filter, seccomp_notify
from sandbox_runtime.light_parent import KERNEL_NAME, LightParent, set_name

Emit = Callable[[protocol.Event], None]

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_OOM_CONTROL = "/sys/fs/cgroup/memory/memory.oom_control"
_MEMORY_EVENTS = "/sys/fs/cgroup/memory.events"
# How long an interrupted session kernel has to reply before it is killed (and its state lost).
INTERRUPT_GRACE_S = 2.0
INTERRUPT_REPEAT_S = 0.1
# Reads of a pipe after the kernel ended: a process it left behind must not keep the supervisor reading.
DRAIN_READS = 64
DEFAULT_LIMITS = protocol.Limits()


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
    exit_fd: int  # readable when the kernel exited (child_exit.watch)
    owns_exit_fd: bool
    request_w: int
    result_r: int
    stdout_r: int
    stderr_r: int
    # Where the kernel hands over its seccomp listener; taken (receive_listener) before its first request.
    handoff: socket.socket | None = None
    listener: seccomp_notify.Listener | None = None  # the kernel's seccomp filter reports here
    reaped: bool = False
    parent: str = "heavy"  # which process forked it (protocol.Exec.parent)

    def receive_listener(self) -> None:
        """Take the listener the kernel sent once its filter was loaded (it was forked long before, so
        this does not wait in practice); a kernel that sent none is killed: it must run nothing."""
        if self.handoff is None:
            return
        handoff, self.handoff = self.handoff, None
        try:
            self.listener = seccomp_notify.receive(handoff)
        except seccomp_notify.HandoffError:
            os.kill(self.pid, signal.SIGKILL)  # no filter, no kernel: the run reports its death

    def close(self) -> None:
        owned = (self.exit_fd,) if self.owns_exit_fd else ()
        for fd in (*owned, self.request_w, self.result_r, self.stdout_r, self.stderr_r):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.handoff is not None:
            self.handoff.close()
        if self.listener is not None:
            self.listener.close()


def _kernel_child(fds: list[int]) -> NoReturn:
    """In a freshly forked kernel (from the supervisor or the light parent): fds are its request read end,
    result, stdout and stderr write ends and the seccomp hand-off socket. Never returns."""
    request_r, result_w, stdout_w, stderr_w, handoff_fd = fds
    try:
        child_exit.forget_in_child()
        set_name(KERNEL_NAME)  # not the light parent's name, which a fork from it would keep
        os.setpgid(0, 0)  # kill(0, sig) from user code reaches the kernel's own processes only
        prctl(_PR_SET_DUMPABLE, 1)  # its own /proc entries stay usable by the user's code
        kernel.setup_child_fds(request_r, result_w, stdout_w, stderr_w, keep=handoff_fd)
        seccomp_filter.install(socket.socket(fileno=handoff_fd))  # before any user code; the listener to us
        kernel.kernel_main()
    finally:
        os._exit(70)


def spawn_kernel(light: LightParent | None = None) -> Kernel:
    """Fork a kernel waiting for its first request (it loads its seccomp filter while we go on); from the
    light parent when given and working, else from this process."""
    request_r, request_w = os.pipe()
    result_r, result_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    stderr_r, stderr_w = os.pipe()
    handoff, kernel_end = seccomp_notify.channel()  # after the pipes: never on fd 3 or 4
    fds = [request_r, result_w, stdout_w, stderr_w, kernel_end.fileno()]
    pid = light.spawn(fds) if light is not None else None
    if light is not None and pid is None:
        # The light parent failed, maybe after forking a kernel on these fds: never hand them to another.
        for fd in (request_r, request_w, result_r, result_w, stdout_r, stdout_w, stderr_r, stderr_w):
            os.close(fd)
        handoff.close()
        kernel_end.close()
        return spawn_kernel(None)
    parent = "light" if pid is not None else "heavy"
    if pid is None:
        pid = os.fork()
        if pid == 0:  # the kernel
            _kernel_child(fds)
    for fd in (request_r, result_w, stdout_w, stderr_w):
        os.close(fd)
    kernel_end.close()
    return Kernel(pid, *child_exit.watch(pid), request_w, result_r, stdout_r, stderr_r, handoff, parent=parent)


class OutputRelay:
    """Turns a stream's bytes into text events, keeping the head when the byte limit is passed.

    Bytes read from the pipe wait in `pending` until the result pipe was looked at (a plot or display
    published before them must be relayed first: see Supervisor._read_output)."""

    def __init__(self, name: str, limit_bytes: int, emit: Emit) -> None:
        self.name = name
        self.limit_bytes = limit_bytes
        self.read_bytes = 0  # taken from the pipe (relayed, dropped or pending)
        self.pending = b""
        self.sent_bytes = 0
        self.truncated = False
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def take(self, data: bytes) -> None:
        self.read_bytes += len(data)
        self.pending += data

    def flush(self, up_to: int | None = None) -> bool:
        """Relay the pending bytes (only those before output position up_to, if given); False once the
        limit is passed."""
        count = len(self.pending) if up_to is None else max(0, up_to - (self.read_bytes - len(self.pending)))
        data, self.pending = self.pending[:count], self.pending[count:]
        return self.feed(data) if data else not self.truncated

    def feed(self, data: bytes) -> bool:
        """Relay data; returns False once the limit is passed (the rest is dropped)."""
        room = self.limit_bytes - self.sent_bytes
        if len(data) > room:
            data = data[:room]
            self.truncated = True
        self.sent_bytes += len(data)
        text = self._decoder.decode(data)
        if text:
            self._emit(protocol.Output(self.name, text))
        return not self.truncated

    def finish(self) -> None:
        text = self._decoder.decode(b"", final=True)
        if text:
            self._emit(protocol.Output(self.name, text))


def _catch_up(fd: int, relay: OutputRelay, position: int) -> None:
    """Relay this request's output up to `position` bytes (never more: what was printed after a plot or
    display must follow it): the pending bytes, then what is already in the pipe, never waiting for more."""
    try:  # the output pipes are non-blocking during a run
        while (missing := position - relay.read_bytes) > 0:
            data = os.read(fd, min(missing, protocol.READ_SIZE))
            if not data:
                break
            relay.take(data)
    except BlockingIOError:
        pass
    relay.flush(up_to=position)


def _exit_error(wait_status: int) -> dict[str, Any]:
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0:
        message = f"the process was killed by signal {signal.Signals(-code).name}"
    else:
        message = f"the process exited with code {code} before the cell finished"
    return {"type": "ProcessExit", "message": message, "traceback": []}


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": error_type, "message": message, "traceback": []}


@dataclass
class _Run:
    """What the supervisor observed of one request so far."""

    request: protocol.Exec
    status: str | None = None
    reply: protocol.Result | None = None
    violation: dict[str, str] | None = None
    tampered: str | None = None
    wait_status: int | None = None
    plots_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    started: bool = False  # the kernel said it runs the request's code (and takes interrupts)


class Supervisor:
    """Owns the kernel and runs one request at a time; `emit` sends events to the worker."""

    def __init__(self, *, emit: Emit, wipe_paths: list[str], keep_state: bool = False,
                 limits: protocol.Limits = DEFAULT_LIMITS) -> None:
        self._emit = emit
        self._wipe_paths = wipe_paths
        self._keep_state = keep_state
        self._limits = limits
        self._lost = False
        self._kernel: Kernel | None = None
        self._run: _Run | None = None
        self._light: LightParent | None = None
        self._next_parent = "heavy"  # the previous request's: the next one is likely of the same kind
        prctl(_PR_SET_DUMPABLE, 0)
        prctl(_PR_SET_CHILD_SUBREAPER, 1)
        seccomp_filter.prebuild()  # once: every kernel forked from here (or the light parent) loads this filter
        guard.prepare()  # the policy layer's sealed functions compiled once, not in every kernel

    def start_light_parent(self) -> None:
        """Fork the light parent (sandbox_runtime.light_parent); call it before the preloads are imported."""
        if not self._keep_state and self._light is None:
            self._light = LightParent.start(_kernel_child)
            self._next_parent = "light"

    def prepare(self) -> None:
        """Fork the next kernel ahead of its request."""
        if self._kernel is None:
            light = self._light if self._next_parent == "light" else None
            self._kernel = spawn_kernel(light)

    def _match_parent(self, request: protocol.Exec) -> None:
        """A stateless request whose hint names the other parent: the waiting kernel (it never ran anything)
        is replaced by one of that parent; a session's kernel holds the session and is never replaced."""
        self._next_parent = request.parent
        k = self._kernel
        if self._keep_state or self._light is None or k is None or k.parent == request.parent:
            return
        if request.parent == "light" and self._light.lost:
            return
        self._discard_kernel()
        self.prepare()

    def _discard_kernel(self) -> None:
        """Kill, reap and close the current kernel."""
        if self._kernel is not None:
            if not self._kernel.reaped:
                self._signal_kernel()
                os.waitpid(self._kernel.pid, 0)
            self._kernel.close()
            self._kernel = None

    def _note_violation(self, violation: dict[str, str]) -> None:
        """Record a policy violation of the running request: the first one sticks, nothing undoes it."""
        if self._run is not None and self._run.violation is None:
            self._run.violation = violation

    def run(self, request: protocol.Exec, control: protocol.LineReader) -> protocol.Done:
        """Run one exec request to its end; returns its `done`. Reads `cancel` from control.

        A run stops early on timeout, output over the limit, cancel, or a kernel that broke the protocol.
        A stateless kernel is then killed. A session kernel is interrupted first (SIGINT, as a notebook
        does); if it replies within INTERRUPT_GRACE_S its state is kept, otherwise it is killed and the
        state is lost. The kernel's reply counts only for the request it answers (its id); a violation
        it reports sticks whatever it sends afterwards.
        """
        if self._lost:
            return protocol.Done(id=request.id, status="error", state="lost",
                                 error=_error("SessionLost", "this session's interpreter was lost"))
        self._match_parent(request)
        self.prepare()
        assert self._kernel is not None
        k = self._kernel
        run = self._run = _Run(request)
        started = time.monotonic()
        deadline = started + request.timeout_ms / 1000
        relays = {k.stdout_r: OutputRelay("stdout", request.output_limit_bytes, self._emit),
                  k.stderr_r: OutputRelay("stderr", request.output_limit_bytes, self._emit)}
        for fd in relays:  # read only what select reported (a plot's catch-up may have taken it since)
            os.set_blocking(fd, False)
        results = protocol.LineReader(k.result_r, max_line_bytes=self._limits.max_line_bytes)
        oom_before = oom_kill_count()
        k.receive_listener()  # before the request: no user code runs unless we hold its listener
        protocol.write_message(k.request_w, request)

        selector = selectors.DefaultSelector()
        for fd in (k.stdout_r, k.stderr_r, k.result_r, k.exit_fd, control.fd):
            selector.register(fd, selectors.EVENT_READ)
        if k.listener is not None and not k.listener.closed:
            selector.register(k.listener.fd, selectors.EVENT_READ)
        interrupted = killed = grace_started = False

        def stop(reason: str) -> None:
            nonlocal deadline, interrupted, killed
            run.status = run.status or reason
            if self._keep_state and not interrupted and not control.closed and run.tampered is None:
                # Interrupted (a session): SIGINT goes out once the kernel said `started` (it takes
                # interrupts from then on, not before), and the grace counts from then. Until then the
                # request's own deadline bounds the wait, and at least the grace.
                interrupted = True
                deadline = max(deadline, time.monotonic() + INTERRUPT_GRACE_S)
            else:
                killed = True
                self._signal_kernel(signal.SIGKILL)

        if self._cancel_requested(control):  # a cancel may have arrived together with the request
            stop("cancelled")
        try:
            while run.reply is None and run.wait_status is None and not killed:
                if interrupted and run.started:
                    if not grace_started:
                        grace_started = True
                        deadline = time.monotonic() + INTERRUPT_GRACE_S
                    # Repeated until the kernel replies: one that lands in the kernel's own frames is
                    # dropped there (sandbox_runtime.kernel._Interrupt).
                    self._signal_kernel(signal.SIGINT)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stop("timeout")  # first the interrupt (sessions), then, past the grace, the kill
                    continue
                if interrupted and run.started:
                    remaining = min(remaining, INTERRUPT_REPEAT_S)
                # The result pipe first: a plot or display says how much output the kernel had written
                # before it (catch_up relays that much first), and what was printed after it waits.
                for key, _ in sorted(selector.select(remaining), key=lambda ready: ready[0].fd != k.result_r):
                    fd = key.fd
                    if fd in relays:
                        try:
                            data = os.read(fd, protocol.READ_SIZE)
                        except BlockingIOError:  # a plot's catch-up (the result pipe went first) took it
                            continue
                        if not data:
                            selector.unregister(fd)
                            continue
                        relays[fd].take(data)
                        # A plot or display published before these bytes is in the result pipe by now: it
                        # goes first (it relays the output before it), then the rest of these bytes.
                        if not self._poll_kernel(k.result_r, results, run, relays):
                            stop("error")
                        if not relays[fd].flush() and run.status is None:
                            stop("output_limit")
                    elif fd == k.result_r:
                        if not self._read_kernel(results, run, relays):
                            stop("error")
                        elif results.closed:
                            selector.unregister(fd)
                    elif fd == k.exit_fd:
                        status = child_exit.exited(k.pid, fd)
                        if status is None:
                            continue  # another child (the SIGCHLD pipe stands for all of them)
                        run.wait_status, k.reaped = status, True
                        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS:
                            self._note_violation(seccomp_notify.KILLED)  # a call through another ABI
                    elif k.listener is not None and fd == k.listener.fd:
                        if not self._refuse_syscalls(k.listener):
                            selector.unregister(fd)
                    elif fd == control.fd:
                        control.fill()
                        if control.closed:
                            selector.unregister(fd)
                            stop("cancelled")  # the worker is gone: nobody wants this result
                        elif self._cancel_requested(control) and run.status is None:
                            stop("cancelled")
            self._drain(relays)
            if run.tampered is None:
                # What the kernel wrote before it ended or was stopped is still in the pipe (a violation).
                os.set_blocking(k.result_r, False)
                with contextlib.suppress(BlockingIOError):
                    for _ in range(DRAIN_READS):
                        if results.closed or not self._read_kernel(results, run, relays):
                            break
        finally:
            selector.close()
            self._run = None
        for relay in relays.values():
            relay.finish()
        duration_ms = int((time.monotonic() - started) * 1000)
        if self._keep_state and (run.reply is None or killed):
            self._lost = True  # the session's interpreter is gone with its state
        return self._done(run, oom_before, relays, duration_ms)

    def _refuse_syscalls(self, listener: seccomp_notify.Listener) -> bool:
        """Refuse (EPERM) the pending seccomp notifications, each a violation; False once none can come."""
        names = listener.answer()
        for name in names or ():
            self._note_violation(seccomp_notify.violation(name))
        return names is not None

    def _read_kernel(self, results: protocol.LineReader, run: _Run, relays: dict[int, OutputRelay]) -> bool:
        """Read the kernel's result pipe once and act on each message; False once it broke the protocol."""
        try:
            results.fill()
            while (line := results.pop()) is not None:
                message = decoding.decode_kernel_message(line, self._limits)
                if isinstance(message, protocol.Violation):
                    self._note_violation(message.as_dict())
                elif isinstance(message, protocol.Started):
                    run.started = run.started or message.id == run.request.id
                elif isinstance(message, protocol.Result):
                    if message.id == run.request.id and run.reply is None:
                        run.reply = message
                elif run.reply is None:
                    self._relay_rich(message, run, relays)
        except protocol.ProtocolError as exc:
            run.tampered = f"the kernel's result channel carried an invalid message ({exc})"
            return False
        return True

    def _relay_rich(self, message: protocol.Plot | protocol.Display, run: _Run,
                    relays: dict[int, OutputRelay]) -> None:
        """Forward a plot or display within the request's budget (the kernel's own count is not trusted),
        after the output the kernel says it wrote before it (only what is already in the pipes: the count
        orders, it is never waited for)."""
        if message.after is not None:
            for relay_fd, wanted in zip(relays, message.after, strict=True):
                _catch_up(relay_fd, relays[relay_fd], wanted)
            message = dataclasses.replace(message, after=None)
        size = message.size()
        kind = "plot" if isinstance(message, protocol.Plot) else "display"
        if size > run.request.max_plot_bytes or run.plots_bytes + size > run.request.max_plots_bytes:
            if len(run.notes) < protocol.MAX_NOTES // 2:
                run.notes.append(f"a {kind} of {size} bytes was dropped: over the output budget")
            return
        run.plots_bytes += size
        self._emit(message)

    def _cancel_requested(self, control: protocol.LineReader) -> bool:
        """Act on the control messages already read; True if one of them was a cancel."""
        cancelled = False
        while (line := control.pop()) is not None:
            try:
                message = decoding.decode_request(line)
            except protocol.ProtocolError:
                continue  # the worker's own messages; nothing else writes there
            if isinstance(message, protocol.Cancel):
                cancelled = True
            elif isinstance(message, protocol.Ping):
                self._emit(protocol.Pong())
        return cancelled

    def _poll_kernel(self, result_r: int, results: protocol.LineReader, run: _Run,
                     relays: dict[int, OutputRelay]) -> bool:
        """Act on what is in the result pipe right now, without waiting; False once it broke the protocol."""
        for _ in range(DRAIN_READS):
            if results.closed or not select.select([result_r], [], [], 0)[0]:
                return True
            if not self._read_kernel(results, run, relays):
                return False
        return True

    def _drain(self, relays: dict[int, OutputRelay]) -> None:
        """Read whatever output is already in the pipes (the kernel flushed before replying)."""
        for fd, relay in relays.items():
            if not relay.flush():
                continue
            os.set_blocking(fd, False)
            try:
                while (data := os.read(fd, protocol.READ_SIZE)) and relay.feed(data):
                    relay.read_bytes += len(data)
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

    def _done(self, run: _Run, oom_before: int | None, relays: dict[int, OutputRelay],
              duration_ms: int) -> protocol.Done:
        """The request's outcome from what was observed: a violation sticks, a stop reason comes next,
        then the kernel's reply (for its own request only), then how the kernel died."""
        truncated = any(relay.truncated for relay in relays.values())
        reply = run.reply
        error = reply.error if reply else None
        status = run.status
        if run.tampered is not None:
            status, error = "error", _error("ProtocolError", run.tampered)
        elif status is None and reply is not None:
            is_memory_error = bool(error and error.get("type") == "MemoryError")
            status = "memory_exceeded" if is_memory_error else ("error" if error else "success")
        elif status is None:
            assert run.wait_status is not None  # no reply and not stopped: the kernel exited
            oom_after = oom_kill_count()
            killed = os.WIFSIGNALED(run.wait_status) and os.WTERMSIG(run.wait_status) == signal.SIGKILL
            oom = killed and (oom_before is None or oom_after is None or oom_after > oom_before)
            status = "memory_exceeded" if oom else "error"
            error = (_error("MemoryError", "the sandbox ran out of memory") if oom
                     else _exit_error(run.wait_status))
        if run.violation is not None:
            status = "policy_violation"  # also when the code caught the exception, or said otherwise
        state = ("lost" if self._lost else "kept") if self._keep_state else None
        return protocol.Done(
            id=run.request.id, status=status, result=reply.result if reply else None, error=error,
            truncated=truncated, cpu_ms=reply.cpu_ms if reply else 0,
            peak_memory_bytes=reply.peak_memory_bytes if reply else 0, duration_ms=duration_ms,
            disk_bytes=cleanup.disk_usage_bytes(self._wipe_paths),
            variables=reply.variables if reply else {},
            notes=((*reply.notes, *run.notes) if reply else tuple(run.notes))[:protocol.MAX_NOTES],
            violation=run.violation, state=state)

    def restart(self, request: protocol.Restart) -> protocol.Done:
        """A session's new interpreter: its kernel and every process it left are killed and a fresh kernel
        forked (variables and imports are gone; files, installed packages and the session stay)."""
        self._discard_kernel()
        cleanup.kill_all_others()
        self._lost = False
        self.prepare()
        return protocol.Done(id=request.id, status="success", state="kept" if self._keep_state else None)

    def reset(self) -> list[str]:
        """After a stateless job: kill every other process, remove every SysV IPC object, wipe the writable
        paths (/dev/shm and /dev/mqueue among them), fork the next kernel.

        Returns what could not be removed (printable descriptions, at most a few dozen): empty means the
        sandbox is as new; anything else is a failed reset and the sandbox must not serve another job.
        A session keeps its kernel, files and processes; once its kernel is lost nothing is re-created.
        """
        if self._keep_state and (self._lost or self._kernel is not None):
            return []
        self._discard_kernel()
        if not self._only_light_parent_left():
            cleanup.kill_all_others()  # the light parent too, if there is one: given up
            if self._light is not None:
                self._light.alive()
        survivors = cleanup.clear_leftovers(self._wipe_paths)
        cleanup.reseed_image_caches()
        self.prepare()
        return survivors

    def _only_light_parent_left(self) -> bool:
        """Whether the only other process is a working light parent (the job left none: nothing to kill)."""
        if self._light is None or not self._light.alive():
            return False
        return set(cleanup.other_processes()) <= {self._light.pid}
