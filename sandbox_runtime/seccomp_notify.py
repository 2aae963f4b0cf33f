"""The supervisor's end of the kernel's seccomp filter: receives each reported system call and refuses it.

A kernel loads its filter (seccomp_filter.py) right after the fork and sends the listener fd over a socket
pair before it runs any user code. The supervisor adds `Listener.fd` to its selector; when a notification
arrives, `Listener.answer` reads it (SECCOMP_IOCTL_NOTIF_RECV), answers -EPERM (SECCOMP_IOCTL_NOTIF_SEND)
and returns the system call's name, which the supervisor records as a policy violation. The ioctls are made
directly with the kernel's struct layout: python3-seccomp keeps the listener of the filter *it* loaded in
libseccomp's process-global state, so it cannot receive on an fd passed in from another process.

While a notification waits, the calling thread is blocked in the kernel (a SIGKILL still ends it); one that
arrives while the supervisor is between runs (a session's background thread) is answered at the start of
the next run, and counts for that run.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import struct
from dataclasses import dataclass, field

from sandbox_runtime.seccomp_filter import NO_LISTENER_TAG, NOTIFY_TAG, binding

# struct seccomp_notif {u64 id; u32 pid; u32 flags; struct seccomp_data {int nr; u32 arch; u64 ip;
# u64 args[6];}} and struct seccomp_notif_resp {u64 id; s64 val; s32 error; u32 flags} (linux/seccomp.h).
_NOTIF = struct.Struct("=QIIiIQ6Q")
_RESP = struct.Struct("=QqiI")


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("!") << 8) | nr


SECCOMP_IOCTL_NOTIF_RECV = _iowr(0, _NOTIF.size)
SECCOMP_IOCTL_NOTIF_SEND = _iowr(1, _RESP.size)
# Notifications answered per readiness event, so a flood cannot starve the supervisor's other fds.
MAX_PER_CALL = 64
HANDOFF_TIMEOUT_S = 30.0


def violation(syscall: str) -> dict[str, str]:
    """The violation the supervisor records for a refused system call."""
    return {"rule": "syscall", "target": syscall, "message": f"the system call {syscall} is refused in the sandbox"}


# A kernel killed by SIGSYS made a system call through another ABI (i386 int 0x80, x32): see seccomp_filter.
KILLED = {"rule": "syscall", "target": "another architecture",
          "message": "the kernel was stopped: a forbidden system call (SIGSYS)"}


class HandoffError(RuntimeError):
    """The kernel died or misbehaved before handing over its listener."""


@dataclass
class Listener:
    """The supervisor's copy of one kernel's seccomp listener fd."""

    fd: int
    closed: bool = False
    _names: dict[int, str] = field(default_factory=dict)

    def answer(self) -> list[str] | None:
        """Refuse (-EPERM) every pending notification; their system call names, or None once no task is left."""
        names: list[str] = []
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        for _ in range(MAX_PER_CALL):
            events = poller.poll(0)
            if not events:
                break
            revents = events[0][1]
            if not revents & select.POLLIN:
                return names or None  # POLLHUP alone: every task under the filter has exited
            buffer = bytearray(_NOTIF.size)
            try:
                fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_RECV, buffer, True)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EINTR):
                    continue  # the caller was killed or interrupted between poll and receive
                raise
            notif_id, _pid, _flags, nr, _arch, _ip, *_args = _NOTIF.unpack(buffer)
            try:
                fcntl.ioctl(self.fd, SECCOMP_IOCTL_NOTIF_SEND, _RESP.pack(notif_id, 0, -errno.EPERM, 0))
            except OSError as exc:
                if exc.errno != errno.ENOENT:  # ENOENT: the caller is gone, nothing to answer
                    raise
            names.append(self._name(nr))
        return names

    def _name(self, nr: int) -> str:
        if nr not in self._names:
            try:
                seccomp = binding()  # present: the kernel built its filter with it
                name = seccomp.resolve_syscall(seccomp.Arch.NATIVE, nr)
                self._names[nr] = name.decode() if isinstance(name, bytes) else str(name)
            except (ImportError, ValueError):
                self._names[nr] = f"syscall {nr}"
        return self._names[nr]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def channel() -> tuple[socket.socket, socket.socket]:
    """The socket pair the listener travels over: (supervisor's end, kernel's end), made before the fork."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def receive(supervisor_end: socket.socket) -> Listener | None:
    """Wait for the new kernel's listener (None: the kernel runs without a filter, mode 'off', or with one
    that reports nothing, mode 'refuse').

    Raises HandoffError when the kernel closed the channel without sending one (it could not load a
    required filter and exits without running anything).
    """
    with supervisor_end:
        supervisor_end.settimeout(HANDOFF_TIMEOUT_S)
        try:
            message, fds, _flags, _addr = socket.recv_fds(supervisor_end, len(NOTIFY_TAG), 1)
        except OSError as exc:
            raise HandoffError(f"no seccomp listener from the kernel: {exc}") from exc
    if message == NOTIFY_TAG and len(fds) == 1:
        return Listener(fds[0])
    for fd in fds:
        os.close(fd)
    if message in (b"off", NO_LISTENER_TAG) and not fds:
        return None
    raise HandoffError("the kernel could not install its seccomp filter")
