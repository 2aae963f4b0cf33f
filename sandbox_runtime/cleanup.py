"""Leaving nothing of one job for the next: kill every other process, remove every IPC object, wipe the
writable paths."""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from collections.abc import Callable, Iterable

from sandbox_runtime.wipe import wipe


def _reap_without_blocking() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _parent_pids() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue  # it exited while we looked
    return parents


def descendants(root_pid: int) -> list[int]:
    """Every live process below root_pid (from /proc)."""
    parents = _parent_pids()
    found: list[int] = []
    frontier = [root_pid]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def kill_all_others(*, max_rounds: int = 1000) -> int:
    """SIGKILL every process but this one (as PID 1: the whole container; else: our descendants).

    Repeats until none is left, because a fork bomb may fork between rounds; the pids limit bounds how
    many there can be. Returns how many rounds it took.
    """
    me = os.getpid()
    for round_number in range(1, max_rounds + 1):
        if me == 1:
            # kill(-1) signals every process in our PID namespace but ourselves, atomically per round.
            try:
                os.kill(-1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            for pid in descendants(me):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _reap_without_blocking()
        others = descendants(me) if me != 1 else _other_pids(me)
        if not others:
            return round_number
        try:
            os.waitpid(-1, 0)  # orphans are reparented to us (PID 1 or subreaper): wait for one to go
        except ChildProcessError:
            pass
    return max_rounds


def other_processes() -> list[int]:
    """Every other live (or unreaped) process this one must clean up: as PID 1 the whole container, else
    its descendants."""
    me = os.getpid()
    return descendants(me) if me != 1 else _other_pids(me)


def _other_pids(me: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and int(entry) != me]


# --- IPC objects ------------------------------------------------------------------------------------------
# SysV IPC objects and POSIX message queues live in the container's IPC namespace, not in any process or
# file system the kill and the wipe cover: a segment outlives its creator, and its pages are charged to the
# container's memory. The supervisor runs as the sandbox uid, the creator of every object, so it may remove
# them (IPC_RMID). POSIX message queues are the files of /dev/mqueue (unlink is mq_unlink): the wipe below.

SYSVIPC_DIR = "/proc/sysvipc"
SYSV_IPC_KINDS = ("shm", "msg", "sem")
_IPC_RMID = 0
# PROC_IPC_INIT_INO: the inode of the host's own (initial) IPC namespace, which is never ours to clear.
_INITIAL_IPC_NAMESPACE_INODE = 0xEFFFFFFF


def owns_ipc_namespace() -> bool:
    """True when every SysV IPC object we can see was left by a job: we are PID 1 of the container, in an IPC
    namespace of its own. A supervisor run on a host (the unit tests) must never remove the host user's."""
    if os.getpid() != 1:
        return False
    try:
        return os.stat("/proc/self/ns/ipc").st_ino != _INITIAL_IPC_NAMESPACE_INODE
    except OSError:
        return False


def sysv_ipc_ids(kind: str, *, sysvipc_dir: str = SYSVIPC_DIR) -> list[int]:
    """Ids of the SysV IPC objects of one kind ("shm", "msg" or "sem") in our IPC namespace."""
    try:
        with open(os.path.join(sysvipc_dir, kind)) as handle:
            rows = handle.read().splitlines()[1:]  # the first line names the columns; the id is the second
    except FileNotFoundError:
        return []  # a kernel built without SysV IPC
    return [int(fields[1]) for fields in (row.split() for row in rows) if len(fields) > 1 and fields[1].isdigit()]


def remove_sysv_ipc(*, sysvipc_dir: str = SYSVIPC_DIR, max_rounds: int = 3) -> list[str]:
    """IPC_RMID every SysV shared-memory segment, message queue and semaphore set; returns those still there.

    A segment someone is still attached to stays listed until it is detached: after kill_all_others nobody
    can be, so anything listed afterwards is a failed reset.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    removers: dict[str, Callable[[int], int]] = {
        "shm": lambda ipc_id: int(libc.shmctl(ipc_id, _IPC_RMID, None)),
        "msg": lambda ipc_id: int(libc.msgctl(ipc_id, _IPC_RMID, None)),
        "sem": lambda ipc_id: int(libc.semctl(ipc_id, 0, _IPC_RMID)),
    }
    errors: dict[tuple[str, int], str] = {}
    for _ in range(max_rounds):
        for kind, remove in removers.items():
            for ipc_id in sysv_ipc_ids(kind, sysvipc_dir=sysvipc_dir):
                if remove(ipc_id) != 0 and (code := ctypes.get_errno()) not in (errno.EINVAL, errno.EIDRM):
                    errors[(kind, ipc_id)] = os.strerror(code)  # EINVAL/EIDRM: it went away meanwhile
        left = [(kind, ipc_id) for kind in removers for ipc_id in sysv_ipc_ids(kind, sysvipc_dir=sysvipc_dir)]
        if not left:
            return []
    return [f"SysV {kind} {ipc_id}" + (f": {errors[(kind, ipc_id)]}" if (kind, ipc_id) in errors else "")
            for kind, ipc_id in left]


def clear_leftovers(paths: Iterable[str]) -> list[str]:
    """Between stateless jobs, once no job process is left: remove every SysV IPC object (only in a
    container's own IPC namespace) and wipe paths, among them /dev/shm and /dev/mqueue (POSIX shared memory,
    semaphores and message queues). Returns what survived; never raises (a failure is a survivor)."""
    try:
        survivors = remove_sysv_ipc() if owns_ipc_namespace() else []
        return survivors + wipe(paths)
    except Exception as exc:  # a reset that cannot say what it left must count as failed
        return [f"the reset failed: {type(exc).__name__}: {exc}"]


def disk_usage_bytes(paths: Iterable[str]) -> int:
    """Bytes in use on the file systems of paths (each tmpfs counted once)."""
    seen: set[int] = set()
    used = 0
    for path in paths:
        try:
            device = os.stat(path).st_dev
            if device in seen:
                continue
            seen.add(device)
            stats = os.statvfs(path)
        except OSError:
            continue
        used += (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    return used


def reseed_image_caches() -> None:
    """Put back what the image's start-up hook copied into /tmp (matplotlib's prebuilt font cache), so the
    next job does not rebuild it (half a second) after the wipe removed it."""
    hook = getattr(sys.modules.get("sitecustomize"), "redirect_mplconfig", None)
    if hook is not None:
        try:
            hook()
        except OSError:
            pass
