"""Knowing when the kernel process exited, as a file descriptor a selector waits on.

Linux's pidfd_open gives one per process: readable once it exited. gVisor (the runsc this project tests with)
does not implement pidfd_open (ENOSYS). There one self-pipe stands in for every child: SIGCHLD's handler
writes a byte to it (signal.set_wakeup_fd), so readable means "some child changed state", and a
waitpid(pid, WNOHANG) says whether it was the kernel. The pipe is the supervisor's: a forked kernel drops the
handler and the wakeup fd before it runs anything (forget_in_child).
"""

from __future__ import annotations

import os
import signal

_wakeup: tuple[int, int] | None = None  # the SIGCHLD self-pipe (read end, write end), once made


def _sigchld_pipe() -> int:
    """The read end of the SIGCHLD self-pipe, made on first use (from the main thread)."""
    global _wakeup
    if _wakeup is None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)  # the wakeup fd does the work
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        _wakeup = (read_end, write_end)
    return _wakeup[0]


def watch(pid: int) -> tuple[int, bool]:
    """An fd that becomes readable when child pid exits, and whether it is pid's own (close it when done);
    the shared SIGCHLD pipe when the kernel has no pidfd_open (gVisor)."""
    try:
        return os.pidfd_open(pid), True
    except OSError:
        return _sigchld_pipe(), False


def exited(pid: int, fd: int) -> int | None:
    """pid's wait status if it exited (it is reaped), else None; call when fd (from watch) is readable."""
    if _wakeup is not None and fd == _wakeup[0]:
        try:
            os.read(fd, 4096)  # one read: the bytes only say "look again"
        except BlockingIOError:
            pass
    reaped, status = os.waitpid(pid, os.WNOHANG)
    return status if reaped == pid else None


def forget_in_child() -> None:
    """In a freshly forked child: SIGCHLD back to its default and no wakeup fd (the pipe is not its)."""
    if _wakeup is not None:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
