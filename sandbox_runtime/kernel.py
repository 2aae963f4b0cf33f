"""The kernel: the forked process that runs user code, one request after another, in its own namespace.

It runs as a child of the supervisor with fd 0 on /dev/null, fd 1 and fd 2 on the supervisor's output
pipes, fd 3 the request pipe and fd 4 the result pipe. Nothing else of the supervisor stays open in it.
"""

from __future__ import annotations

import builtins
import io
import os
import resource
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any, NoReturn

from sandbox_runtime import cell as _cell_module
from sandbox_runtime import decoding, protocol
from sandbox_runtime.cell import run_cell
from sandbox_runtime.display import DisplayCapture, Publish
from sandbox_runtime.guard import RuntimePolicy, install_audit_hook, user_builtins
from sandbox_runtime.hooks import after_import
from sandbox_runtime.variables import summarize

REQUEST_FD = 3
RESULT_FD = 4
# Whole lines on the result pipe: a user thread's violation report never lands inside a result.
_WRITE_LOCK = threading.RLock()


def _text_stream(fd: int) -> io.TextIOWrapper:
    # Line buffering over an unbuffered file: each complete line reaches the pipe in one write, at once.
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _fresh_namespace(users: dict[str, Any]) -> dict[str, Any]:
    return {"__name__": "__main__", "__builtins__": users, "__doc__": None}


def _reseed_random_generators() -> None:
    # After fork every kernel would repeat the parent's random sequence; stdlib `random` reseeds itself.
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _usage() -> tuple[float, int]:
    """(cpu seconds, peak RSS bytes) of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, max(own.ru_maxrss, children.ru_maxrss) * 1024


def setup_child_fds(request_r: int, result_w: int, stdout_w: int, stderr_w: int, *, keep: int = -1) -> None:
    """Arrange the kernel's fds (see module docstring) and close everything else inherited.

    keep: one more fd above RESULT_FD left open (the seccomp hand-off socket, closed before user code runs).
    """
    devnull = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((devnull, 0), (stdout_w, 1), (stderr_w, 2),
                           (request_r, REQUEST_FD), (result_w, RESULT_FD)):
        if source != target:
            os.dup2(source, target, inheritable=target <= 2)
    top = os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 1024
    os.closerange(RESULT_FD + 1, keep if keep > RESULT_FD else top)
    if keep > RESULT_FD:
        os.closerange(keep + 1, top)
    os.set_inheritable(REQUEST_FD, False)
    os.set_inheritable(RESULT_FD, False)


def kernel_main() -> NoReturn:
    """Serve requests from REQUEST_FD until it closes; never returns."""
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # when the sandbox runs out of memory, the user's process goes first
    except OSError:
        pass
    sys.stdin = open(os.devnull)
    sys.stdout = _text_stream(1)
    sys.stderr = _text_stream(2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _reseed_random_generators()
    report = violation_reporter(RESULT_FD)
    rich = _RichOutput()
    policy = RuntimePolicy.from_json(os.environ.get("PENNY_POLICY"))
    users = user_builtins(policy)  # the user's builtins; after _RichOutput added display()
    if policy.active:
        install_audit_hook(policy, users, report)
    # A throwaway request first takes the copy-on-write faults of the whole cell path (compiling, running,
    # capturing, summarising) while the kernel waits for work, not while the user waits for the result.
    _serve(protocol.Exec(id="warm-up", code="_ = str(1)", timeout_ms=1000, output_limit_bytes=0),
           _fresh_namespace(users), rich, publish=lambda _message: None)
    reader = protocol.LineReader(REQUEST_FD)
    namespace = _fresh_namespace(users)
    while True:
        line = reader.read_line()
        if line is None:
            os._exit(0)
        request = decoding.decode_request(line)
        if isinstance(request, protocol.Exec):
            _send(_serve(request, namespace, rich, publish=_send))


def violation_reporter(fd: int) -> Callable[[dict[str, Any]], None]:
    """The policy layer's report(violation): sent to the supervisor at once, before the refusal returns.

    The report is what makes a violation stick: the supervisor keeps the first one it reads, whatever
    the code does next. So if it cannot be delivered (the channel was closed, or another file put in its
    place), the kernel is killed rather than let the job end as if nothing happened.
    """
    channel = os.fstat(fd)
    identity = (channel.st_dev, channel.st_ino)
    fstat, write_line, kill, getpid, sigkill = os.fstat, protocol.write_line, os.kill, os.getpid, signal.SIGKILL
    line_of, violation, lock = protocol.kernel_line, protocol.Violation, _WRITE_LOCK
    limit = protocol.MAX_TEXT_CHARS // 4

    def report(found: dict[str, Any]) -> None:
        try:
            line = line_of(violation(str(found.get("rule"))[:128], str(found.get("target"))[:limit],
                                     str(found.get("message"))[:limit]))
            now = fstat(fd)
            if (now.st_dev, now.st_ino) != identity:
                raise OSError("the result channel was replaced")
            with lock:
                write_line(fd, line)
        except BaseException:
            kill(getpid(), sigkill)

    return report


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _send(message: protocol.KernelMessage) -> None:
    """One message to the supervisor; whole lines only, one writer at a time (user threads may report)."""
    line = protocol.kernel_line(message)
    with _WRITE_LOCK:
        protocol.write_line(RESULT_FD, line)


def _serve(request: protocol.Exec, namespace: dict[str, Any], rich: _RichOutput, *,
           publish: Publish) -> protocol.Result:
    """Run one request in namespace; the `result` message for the supervisor."""
    namespace.update(request.variables)
    capture = rich.begin(request, publish)
    cpu_before, _ = _usage()
    sys.stdin = io.StringIO(request.stdin)  # input() past its end raises EOFError, as in a terminal

    def enter() -> None:
        # From here SIGINT (the supervisor's interrupt) raises KeyboardInterrupt in the user's frames
        # only (see _Interrupt). `started` tells the supervisor so: it interrupts only once the handler
        # is in place, and counts its grace from here, so an interrupt sent before the cell began (it
        # arrived with the request) is neither lost nor fatal to the session.
        signal.signal(signal.SIGINT, _Interrupt().handle)
        publish(protocol.Started(request.id))

    # run_cell ignores SIGINT again the moment the user's statements end (leave).
    try:
        outcome = run_cell(request.code, namespace, describe=capture.value, enter=enter, leave=_ignore_interrupts)
        rich.end()
    finally:
        _ignore_interrupts()
    cpu_after, peak_bytes = _usage()
    return protocol.Result(id=request.id, result=outcome.result, error=outcome.error,
                           variables=summarize(namespace), notes=tuple(capture.notes[:protocol.MAX_NOTES]),
                           cpu_ms=int((cpu_after - cpu_before) * 1000), peak_memory_bytes=peak_bytes)


# Frames of the kernel's own bookkeeping and of its writes to the result pipe: an interrupt handled there
# is dropped, never raised (Python runs a pending handler at the next bytecode, and signal.signal() itself
# runs pending handlers first), so none breaks the kernel or leaves half a line on the pipe.
_OWN_FILES = frozenset(os.path.abspath(module.__file__) for module in (_cell_module, protocol)
                        if module.__file__) | {os.path.abspath(__file__)}


class _Interrupt:
    """SIGINT handler for one cell: KeyboardInterrupt in the user's frames, at most every REPEAT_S.

    The supervisor repeats its interrupt until the kernel answers. One handled in the kernel's own frames
    (between `started` and the user's first statement, or after the last) is dropped: the next repeat
    lands in the user's code, or the cell is over anyway. Spacing the raises keeps a repeat from landing
    in the middle of the user's handling of the previous one.
    """

    REPEAT_S = 0.5

    def __init__(self) -> None:
        self._last = -self.REPEAT_S

    def handle(self, _signum: int, frame: types.FrameType | None) -> None:
        if frame is None or os.path.abspath(frame.f_code.co_filename) in _OWN_FILES:
            return
        now = time.monotonic()
        if now - self._last >= self.REPEAT_S:
            self._last = now
            raise KeyboardInterrupt


class _RichOutput:
    """Connects matplotlib, plotly and display() to the current cell's DisplayCapture."""

    def __init__(self) -> None:
        self.capture = DisplayCapture(_send, formats=["png"], max_plot_bytes=0, max_total_bytes=0)
        after_import("sandbox_runtime.plotting", self._connect_matplotlib)  # imported as the backend
        after_import("plotly.basedatatypes", self._patch_plotly)
        builtins.display = lambda *objects: self.capture.display(*objects)  # type: ignore[attr-defined]

    def _connect_matplotlib(self, plotting: Any) -> None:
        plotting.capture = lambda figure: self.capture.figure(figure)

    def _patch_plotly(self, module: Any) -> None:
        module.BaseFigure.show = lambda figure, *args, **kwargs: self.capture.plotly(figure)

    def begin(self, request: protocol.Exec, publish: Publish) -> DisplayCapture:
        self.capture = DisplayCapture(publish, formats=list(request.plot_formats) or ["png"],
                                      max_plot_bytes=request.max_plot_bytes,
                                      max_total_bytes=request.max_plots_bytes)
        return self.capture

    def end(self) -> None:
        """Capture the figures the cell left open (each once; then they are closed)."""
        if "matplotlib.pyplot" in sys.modules:
            from sandbox_runtime import plotting  # matplotlib is there: so is its backend

            plotting.capture = lambda figure: self.capture.figure(figure)
            plotting.capture_open_figures()
