"""The light parent: a second process that forks kernels, started before the heavy libraries are imported.

Why: a kernel's fork, exit and copy-on-write faults cost in proportion to its parent's memory. A stateless
supervisor has numpy, pandas and matplotlib loaded (PENNY_PRELOAD) so that code using them starts at once;
code that imports none of them (the worker's hint, protocol.Exec.parent == "light") gets a kernel forked from
this process instead, which the supervisor forked before the preloads: about half the CPU per job. The hint
is a performance choice only: code that imports numpy at run time in a light kernel imports it itself.

The kernel is the same either way: the light parent runs the supervisor's own child code (`child_main`, the
fd layout, the seccomp filter built before this process was forked, then kernel_main), on pipes and a
hand-off socket that the supervisor made and passes over a unix socket (SCM_RIGHTS); it keeps no copy.
It forks through an intermediate process that exits at once, so the kernel is re-parented to the
supervisor (PID 1, or a child subreaper on a host), which waits for it and reads its exit status as for a
kernel it forked itself.

The light parent runs no user code and reads only the supervisor's socket. Like the supervisor it is not
dumpable (no ptrace, no /proc/<pid>/mem or fd of it). User code can signal it (same uid): a light parent that
died or was stopped makes the next light kernel come from the supervisor instead (SIGCONT is sent before each
request, and a failed request falls back), never a different kernel. A job that leaves any process behind
makes the reset kill every process as before (kill(-1)), the light parent too: that sandbox then forks every
kernel from the supervisor, as before this module existed.
"""

from __future__ import annotations

import ctypes
import gc
import os
import signal
import socket
import struct
from collections.abc import Callable
from typing import NoReturn

# The kernel's request read end, result write end, stdout and stderr write ends, seccomp hand-off socket.
KERNEL_FDS = 5
SPAWN_TIMEOUT_S = 5.0
_PID = struct.Struct("=i")
_FORK = b"fork"
NAME = "penny-light"  # its /proc/<pid>/comm
KERNEL_NAME = "penny-kernel"  # a kernel's, from either parent (what it forks keeps it)
_PR_SET_NAME = 15

ChildMain = Callable[[list[int]], NoReturn]


class LightParent:
    """The supervisor's handle on its light parent process."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._sock.settimeout(SPAWN_TIMEOUT_S)
        self.lost = False

    @classmethod
    def start(cls, child_main: ChildMain) -> LightParent:
        """Fork the light parent now (call it before importing anything heavy)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                _serve(theirs, child_main)
            finally:
                os._exit(0)
        theirs.close()
        return cls(pid, ours)

    def spawn(self, fds: list[int]) -> int | None:
        """Have it fork a kernel on these fds (see KERNEL_FDS); the kernel's pid, a child of ours by then, or
        None when the light parent failed (it is then given up: the caller forks the kernel itself)."""
        if self.lost:
            return None
        try:
            os.kill(self.pid, signal.SIGCONT)  # user code may have stopped it (it can no longer run now)
            socket.send_fds(self._sock, [_FORK], fds)
            reply = self._sock.recv(_PID.size)
        except OSError:  # TimeoutError included
            reply = b""
        pid = _PID.unpack(reply)[0] if len(reply) == _PID.size else -1
        if pid <= 0:
            self.close()
            return None
        return pid

    def alive(self) -> bool:
        """Whether it still runs (a dead one is reaped here and given up)."""
        if self.lost:
            return False
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid  # reaped elsewhere (the reset's kill of every process)
        if pid != 0:
            self.lost = True
            self._sock.close()
        return not self.lost

    def close(self) -> None:
        """Kill and reap it; never raises."""
        if not self.lost:
            self.lost = True
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self._sock.close()


def set_name(name: str) -> None:
    """prctl(PR_SET_NAME): what a job listing /proc sees this process as (its comm, which a fork keeps: each
    kernel names itself KERNEL_NAME). Not through /proc/self/comm: a non-dumpable process's /proc files are
    root's."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, name.encode(), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _serve(sock: socket.socket, child_main: ChildMain) -> NoReturn:
    """The light parent's loop: one kernel per request, until the supervisor's end closes."""
    # The supervisor's stdin and stdout are the worker's channel: never read or written from here.
    set_name(NAME)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    gc.freeze()  # as in the supervisor: the kernels' collector never touches (copies) these pages
    while True:
        message, fds, _flags, _address = socket.recv_fds(sock, len(_FORK), KERNEL_FDS)
        if not message:
            os._exit(0)
        if message != _FORK or len(fds) != KERNEL_FDS:
            for fd in fds:
                os.close(fd)
            sock.send(_PID.pack(-1))
            continue
        pid_r, pid_w = os.pipe()
        middle = os.fork()
        if middle == 0:  # the intermediate: fork the kernel, say its pid, exit (the kernel is re-parented)
            try:
                os.close(pid_r)
                kernel_pid = os.fork()
                if kernel_pid == 0:
                    child_main(fds)  # closes every other fd (ours included) before it runs anything
                os.write(pid_w, _PID.pack(kernel_pid))
            finally:
                os._exit(0)
        os.close(pid_w)
        for fd in fds:
            os.close(fd)
        os.waitpid(middle, 0)  # from here the kernel is the supervisor's child
        reply = os.read(pid_r, _PID.size)
        os.close(pid_r)
        sock.send(reply if len(reply) == _PID.size else _PID.pack(-1))
