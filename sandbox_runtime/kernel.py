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
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sandbox_runtime import protocol
from sandbox_runtime.cell import CellOutcome, format_error, run_cell
from sandbox_runtime.display import DisplayCapture, Publish
from sandbox_runtime.guard import RuntimePolicy, install_audit_hook, user_builtins
from sandbox_runtime.hooks import after_import
from sandbox_runtime.variables import summarize

REQUEST_FD = 3
RESULT_FD = 4


def _text_stream(fd: int) -> io.TextIOWrapper:
    # Line buffering over an unbuffered file: each complete line reaches the pipe in one write, at once.
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True)


def _fresh_namespace(guard: Guard) -> dict[str, Any]:
    return {"__name__": "__main__", "__builtins__": guard.builtins, "__doc__": None}


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


def setup_child_fds(request_r: int, result_w: int, stdout_w: int, stderr_w: int) -> None:
    """Arrange the kernel's fds (see module docstring) and close everything else inherited."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((devnull, 0), (stdout_w, 1), (stderr_w, 2),
                           (request_r, REQUEST_FD), (result_w, RESULT_FD)):
        if source != target:
            os.dup2(source, target, inheritable=target <= 2)
    os.closerange(RESULT_FD + 1, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 1024)
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
    rich = _RichOutput()
    policy = RuntimePolicy.from_json(os.environ.get("PENNY_POLICY"))
    guard = Guard(user_builtins(policy))  # after _RichOutput added display()
    if policy.active:
        install_audit_hook(policy, guard.builtins, guard.violations.append)
    # A throwaway request first takes the copy-on-write faults of the whole cell path (compiling, running,
    # capturing, summarising) while the kernel waits for work, not while the user waits for the result.
    _serve({"code": "_ = str(1)"}, _fresh_namespace(guard), rich, guard, publish=lambda _kind, _item: None)
    reader = protocol.LineReader(REQUEST_FD)
    namespace = _fresh_namespace(guard)
    while True:
        request = reader.read_one()
        if request is None:
            os._exit(0)
        protocol.write_message(RESULT_FD, _serve(request, namespace, rich, guard, publish=_publish))


def _serve(request: dict[str, Any], namespace: dict[str, Any], rich: _RichOutput, guard: Guard, *,
           publish: Publish) -> dict[str, Any]:
    """Run one request in namespace; the `result` message for the supervisor."""
    namespace.update(request.get("variables") or {})
    guard.violations.clear()
    capture = rich.begin(request, publish)
    cpu_before, _ = _usage()
    # SIGINT (the supervisor's interrupt) raises KeyboardInterrupt only while user code runs; one
    # arriving between cells is ignored, so it can never break the kernel's own bookkeeping.
    signal.signal(signal.SIGINT, _Interrupt().handle)
    try:
        outcome = run_cell(request["code"], namespace, describe=capture.value)
        rich.end()
    except KeyboardInterrupt as exc:  # landed just after the cell, before SIG_IGN took over
        outcome = CellOutcome(error=format_error(exc))
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    cpu_after, peak_bytes = _usage()
    return {
        "kind": "result",
        "result": outcome.result,
        "error": outcome.error,
        "variables": summarize(namespace),
        "notes": capture.notes,
        "violation": guard.violations[0] if guard.violations else None,
        "cpu_ms": int((cpu_after - cpu_before) * 1000),
        "peak_memory_bytes": peak_bytes,
    }


@dataclass
class Guard:
    """The user's builtins and the violations the audit hook recorded for the current cell."""

    builtins: dict[str, Any]
    violations: list[dict[str, Any]] = field(default_factory=list)


class _Interrupt:
    """SIGINT handler for one cell: KeyboardInterrupt, but at most every REPEAT_S.

    The supervisor repeats its interrupt until the kernel answers; spacing the raises keeps a repeat from
    landing in the middle of handling the previous one (which would break the kernel, losing the state).
    """

    REPEAT_S = 0.5

    def __init__(self) -> None:
        self._last = -self.REPEAT_S

    def handle(self, _signum: int, _frame: object) -> None:
        now = time.monotonic()
        if now - self._last >= self.REPEAT_S:
            self._last = now
            raise KeyboardInterrupt


def _publish(kind: str, item: dict[str, Any]) -> None:
    protocol.write_message(RESULT_FD, {"kind": kind, kind: item})


class _RichOutput:
    """Connects matplotlib, plotly and display() to the current cell's DisplayCapture."""

    def __init__(self) -> None:
        self.capture = DisplayCapture(_publish, formats=["png"], max_plot_bytes=0, max_total_bytes=0)
        after_import("sandbox_runtime.plotting", self._connect_matplotlib)  # imported as the backend
        after_import("plotly.basedatatypes", self._patch_plotly)
        builtins.display = lambda *objects: self.capture.display(*objects)  # type: ignore[attr-defined]

    def _connect_matplotlib(self, plotting: Any) -> None:
        plotting.capture = lambda figure: self.capture.figure(figure)

    def _patch_plotly(self, module: Any) -> None:
        module.BaseFigure.show = lambda figure, *args, **kwargs: self.capture.plotly(figure)

    def begin(self, request: dict[str, Any], publish: Publish) -> DisplayCapture:
        self.capture = DisplayCapture(publish, formats=request.get("plot_formats") or ["png"],
                                      max_plot_bytes=int(request.get("max_plot_bytes", 5 * 2**20)),
                                      max_total_bytes=int(request.get("max_plots_bytes", 20 * 2**20)))
        return self.capture

    def end(self) -> None:
        """Capture the figures the cell left open (each once; then they are closed)."""
        if "matplotlib.pyplot" in sys.modules:
            from sandbox_runtime import plotting  # matplotlib is there: so is its backend

            plotting.capture = lambda figure: self.capture.figure(figure)
            plotting.capture_open_figures()
