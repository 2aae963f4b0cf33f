"""The kernel's exit as a readable fd: a pidfd where Linux has one, the SIGCHLD pipe where not (gVisor)."""

from __future__ import annotations

import errno
import os
import select
import signal
import time
from collections.abc import Iterator

import pytest

from sandbox_runtime import child_exit


def _child(code: int, *, delay_s: float = 0.0) -> int:
    pid = os.fork()
    if pid == 0:
        time.sleep(delay_s)
        os._exit(code)
    return pid


def _wait_exit(pid: int, fd: int) -> int:
    """Select on fd until exited() reports pid (the SIGCHLD pipe may also wake for other children)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            status = child_exit.exited(pid, fd)
            if status is not None:
                return status
    raise AssertionError("the child's exit was never reported")


@pytest.fixture
def no_pidfd(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As under gVisor: pidfd_open is ENOSYS. The SIGCHLD pipe and handler are undone afterwards."""
    def enosys(_pid: int, _flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", enosys)
    monkeypatch.setattr(child_exit, "_wakeup", None)
    previous = signal.getsignal(signal.SIGCHLD)
    yield
    wakeup = child_exit._wakeup
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, previous)
    if wakeup is not None:
        for fd in wakeup:
            os.close(fd)


def test_a_pidfd_reports_the_exit_status_where_linux_has_one() -> None:
    pid = _child(3)
    fd, owned = child_exit.watch(pid)
    try:
        assert owned
        assert os.WEXITSTATUS(_wait_exit(pid, fd)) == 3
    finally:
        os.close(fd)


def test_without_pidfd_the_sigchld_pipe_reports_the_exit_and_ignores_other_children(no_pidfd: None) -> None:
    kernel = _child(5, delay_s=0.5)
    fd, owned = child_exit.watch(kernel)
    assert not owned  # the shared pipe: never closed with one kernel
    other = _child(0)  # another child exits first: a wake-up, not the kernel's exit
    os.waitpid(other, 0)
    assert os.WEXITSTATUS(_wait_exit(kernel, fd)) == 5
    with pytest.raises(ChildProcessError):
        os.waitpid(kernel, os.WNOHANG)  # reaped by exited()
