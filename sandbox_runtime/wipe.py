"""The wipe: empty a directory of anything user code can leave in it, whatever the tree's shape.

An iterative walk over directory fds: no recursion (any depth), no path longer than one name (any depth
fits PATH_MAX), no symlink followed (O_NOFOLLOW, unlink), a directory the user chmod'ed 000 made ours again,
names taken as the bytes they are (surrogate escapes), entries that vanish meanwhile ignored. At most
OPEN_DIRS_MAX directory fds are open at once: deeper ancestors are closed and reopened through `..` on the
way up, checked against their device and inode, so a 5,000-level tree fits the sandbox's 1,024 open files.
It runs as the sandbox user, who owns everything user code could create.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field

from sandbox_runtime.nofollow import open_directory

OPEN_DIRS_MAX = 64
WIPE_PASSES_MAX = 3
REPORTED_MAX = 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _TreeMoved(Exception):
    """A directory's `..` is no longer the parent we came from (someone renamed it meanwhile)."""


class _Failures:
    """What could not be removed: the first REPORTED_MAX as printable paths, the rest only counted."""

    def __init__(self) -> None:
        self.reported: list[str] = []
        self.count = 0

    def add(self, stack: list[_Dir], name: str, error: OSError | str) -> None:
        """Note that `name` in the directory on top of stack (a path when stack is empty) failed."""
        self.count += 1
        if len(self.reported) < REPORTED_MAX:  # the path walks the stack: only built for the ones reported
            message = error if isinstance(error, str) else (error.strerror or str(error))
            self.reported.append(f"{printable_path([d.name for d in stack] + [name])}: {message}")


@dataclass
class _Dir:
    """A directory on the walk's path: its fd (None while closed), identity, name in its parent, and the
    subdirectories still to be emptied and removed."""

    fd: int | None
    dev: int
    ino: int
    name: str
    subdirs: list[str] = field(default_factory=list)


def printable_path(names: list[str], *, max_chars: int = 200) -> str:
    """A path for a message: non-ASCII, control characters and undecodable bytes escaped; long ones cut."""
    path = ascii("/".join(names).replace("//", "/"))[1:-1]
    return path if len(path) <= max_chars else "..." + path[-max_chars:]


def _open_dir(name: str, dir_fd: int | None) -> tuple[int, os.stat_result]:
    """Open a directory without following a symlink; one the user made unreadable or unwritable is given
    its owner's rights back (we run as the user: we own it)."""
    try:
        fd = open_directory(name, dir_fd, _DIR_FLAGS)
    except PermissionError:
        # O_PATH needs no permission on the directory itself; chmod and reopen through /proc/self/fd reach
        # exactly the inode just opened, a directory, never a symlink's target.
        path_fd = open_directory(name, dir_fd, os.O_PATH | os.O_CLOEXEC)
        try:
            os.chmod(f"/proc/self/fd/{path_fd}", 0o700)
            fd = os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(path_fd)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o700 != 0o700:  # e.g. 0500: listable, but nothing in it could be removed
            os.fchmod(fd, stat.S_IMODE(st.st_mode) | 0o700)
    except OSError:
        os.close(fd)
        raise
    return fd, st


def _reopen_parent(child_fd: int, parent: _Dir) -> int:
    fd = os.open("..", _DIR_FLAGS, dir_fd=child_fd)
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (parent.dev, parent.ino):
        os.close(fd)
        raise _TreeMoved
    return fd


def _scan(stack: list[_Dir], failures: _Failures) -> None:
    """Unlink every non-directory in the top directory; note its subdirectories for the walk."""
    top = stack[-1]
    assert top.fd is not None
    os.lseek(top.fd, 0, os.SEEK_SET)  # scandir reads through a duplicate, which shares the offset
    with os.scandir(top.fd) as entries:
        for entry in entries:
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                top.subdirs.append(entry.name)
                continue
            try:
                os.unlink(entry.name, dir_fd=top.fd)
            except FileNotFoundError:
                pass
            except IsADirectoryError:  # replaced by a directory since it was listed
                top.subdirs.append(entry.name)
            except OSError as exc:
                failures.add(stack, entry.name, exc)


def _descend(stack: list[_Dir], name: str, failures: _Failures) -> None:
    """Open the subdirectory `name` of the top directory and push it, its files already removed."""
    top = stack[-1]
    assert top.fd is not None
    try:
        fd, st = _open_dir(name, top.fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):  # a file or symlink now: unlink, never follow
            try:
                os.unlink(name, dir_fd=top.fd)
                return
            except FileNotFoundError:
                return
            except OSError as unlink_exc:
                exc = unlink_exc
        failures.add(stack, name, exc)
        return
    if st.st_dev != top.dev:  # a mount point: user code cannot mount, so this is never ours to empty
        os.close(fd)
        failures.add(stack, name, "another file system is mounted here")
        return
    if len(stack) >= OPEN_DIRS_MAX:
        _close(stack[-OPEN_DIRS_MAX])
    stack.append(_Dir(fd, st.st_dev, st.st_ino, name))
    _scan(stack, failures)


def _close(directory: _Dir) -> None:
    if directory.fd is not None:
        os.close(directory.fd)
        directory.fd = None


def _wipe_once(root: str, failures: _Failures) -> None:
    """One pass: empty root (the directory itself stays)."""
    try:
        fd, st = _open_dir(root, None)
    except FileNotFoundError:
        return  # nothing to wipe (e.g. no /dev/mqueue on this host)
    stack = [_Dir(fd, st.st_dev, st.st_ino, root)]
    popped: _Dir | None = None
    try:
        _clear_user_xattrs(stack, failures)
        _scan(stack, failures)
        while stack:
            top = stack[-1]
            if top.subdirs:
                _descend(stack, top.subdirs.pop(), failures)
                continue
            if len(stack) == 1:
                return  # the root is empty (or holds what failed)
            popped = stack.pop()
            parent = stack[-1]
            assert popped.fd is not None
            if parent.fd is None:
                parent.fd = _reopen_parent(popped.fd, parent)
            _close(popped)
            popped = None
            try:
                os.rmdir(top.name, dir_fd=parent.fd)
            except FileNotFoundError:
                pass
            except OSError as exc:  # ENOTEMPTY: what is left inside was reported
                failures.add(stack, top.name, exc)
    except _TreeMoved:
        failures.add([], root, "a directory was moved during the wipe")
    finally:
        for directory in ([popped] if popped else []) + stack:
            _close(directory)


def _clear_user_xattrs(stack: list[_Dir], failures: _Failures) -> None:
    """A mount point the user owns (/workspace) outlives the wipe: its user.* attributes must not."""
    fd = stack[0].fd
    assert fd is not None
    try:
        names = os.listxattr(fd)
    except OSError:
        return  # no xattr support: nothing can be stored there
    for name in names:
        if name.startswith("user."):
            try:
                os.removexattr(fd, name)
            except OSError as exc:
                failures.add(stack[:1], f"[xattr {name}]", exc)


def _leftovers(root: str) -> list[str]:
    """What is still in root (entries and user.* attributes), by name; empty when root does not exist."""
    try:
        left = os.listdir(root)
        left += [f"[xattr {name}]" for name in os.listxattr(root) if name.startswith("user.")]
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [f"(cannot list: {exc.strerror})"]
    return left


def wipe(paths: Iterable[str]) -> list[str]:
    """Remove everything inside each path (not the path itself); returns what survived, as printable paths.

    Never raises and never recurses; any tree user code can make (depth, count, names, permissions,
    symlinks) is removed. A pass that leaves something (say, a file created meanwhile) is repeated, up to
    WIPE_PASSES_MAX passes; anything left after them is a failed wipe.
    """
    survivors: list[str] = []
    for root in paths:
        failures = _Failures()
        for _ in range(WIPE_PASSES_MAX):
            failures = _Failures()
            try:
                _wipe_once(root, failures)
            except OSError as exc:  # the root itself cannot be opened or read
                failures.add([], root, exc)
            left = _leftovers(root)
            if not left:
                break
        else:
            reported = failures.reported or [printable_path([root, name]) for name in left[:REPORTED_MAX]]
            more = max(failures.count, len(left)) - len(reported)
            survivors.extend(reported + ([f"{root}: and {more} more"] if more > 0 else []))
    return survivors
