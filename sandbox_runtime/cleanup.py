"""Leaving nothing of one job for the next: kill every other process, wipe the writable paths."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import sys
from collections.abc import Iterable


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


def _other_pids(me: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and int(entry) != me]


def _make_removable(function: object, path: str, _exc: object) -> None:
    # The user may have chmod'ed a directory to 000: we own it, so give ourselves rights and retry.
    parent = os.path.dirname(path)
    for target in (parent, path):
        try:
            mode = os.lstat(target).st_mode
            if stat.S_ISDIR(mode):
                os.chmod(target, 0o700)
        except OSError:
            pass
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=_make_removable)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def wipe(paths: Iterable[str]) -> list[str]:
    """Remove everything inside each path (not the path itself); returns entries that survived."""
    survivors: list[str] = []
    for root in paths:
        try:
            entries = list(os.scandir(root))
        except PermissionError:
            try:
                os.chmod(root, 0o700)  # we own it, but the user chmod'ed it
                entries = list(os.scandir(root))
            except OSError:
                survivors.append(root)
                continue
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, onerror=_make_removable)
                else:
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass
            except OSError:
                _make_removable(None, entry.path, None)
            if os.path.lexists(entry.path):
                survivors.append(entry.path)
    return survivors


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
