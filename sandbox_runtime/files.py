"""Session files: list, read, write and delete under the workspace, never following a link.

A path is relative to the workspace root and resolved one component at a time from a directory fd
(openat-style): every directory is opened with O_DIRECTORY | O_NOFOLLOW, the last component is looked at
through an O_PATH | O_NOFOLLOW fd (which opens nothing: no FIFO blocks, no device is touched) and only a
regular file is then reopened, through /proc/self/fd, so the file read or written is the very inode that
was checked. Anything that is not a plain relative path of plain directories to a regular file (`..`, an
absolute path, a symlink the user's code made, a FIFO, a device, a directory where a file is expected) is
refused with `invalid_path` before anything is read or written. Stdlib only: this runs in the sandbox.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import fnmatch
import functools
import os
import re
import stat
from collections.abc import Iterator
from typing import Any

from sandbox_runtime import protocol
from sandbox_runtime.nofollow import open_directory

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class FileRefused(Exception):
    """A file request that cannot be done: `code` is one of protocol.FILE_ERRORS."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def split_path(path: str) -> list[str]:
    """The components of a workspace-relative path; FileRefused for anything but plain names."""
    if "\0" in path or path.startswith("/") or "\\" in path:
        raise FileRefused("invalid_path", f"{path[:200]!r} is not a path relative to the workspace")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise FileRefused("invalid_path", f"{path[:200]!r} leaves the workspace")
    return parts


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _open_dir(parent: int, name: str, *, create: bool = False) -> int:
    """The directory `name` in parent (made first if create); never through a symlink."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
    try:
        return open_directory(name, parent, _DIR_FLAGS)
    except FileNotFoundError:
        raise FileRefused("not_found", f"no directory {name!r}") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise FileRefused("invalid_path", f"{name!r} is not a directory (a link, a file or a device)") from None
        raise


def _walk(root: str, parts: list[str], *, create: bool = False) -> int:
    """An fd of the directory parts name under root."""
    fd = os.open(root, _DIR_FLAGS)
    for part in parts:
        try:
            child = _open_dir(fd, part, create=create)
        finally:
            os.close(fd)
        fd = child
    return fd


def _regular(parent: int, name: str, flags: int) -> int:
    """Open the regular file `name` in parent with flags; FileRefused for anything else."""
    try:
        handle = os.open(name, _PATH_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        raise FileRefused("not_found", f"no file {name!r}") from None
    with _fd(handle):
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("invalid_path", f"{name!r} is {_kind(info.st_mode)}, not a regular file")
        # The same inode, now opened for real (never re-resolved by name).
        # O_NONBLOCK: a lease the user's code holds on the file cannot make the open wait.
        return os.open(f"/proc/self/fd/{handle}", flags | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _entry_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    return "symlink" if stat.S_ISLNK(mode) else "other"


def list_dir(root: str, request: protocol.FileList) -> protocol.FileReply:
    """Name, type, size (bytes) and mtime (ms) of each entry of a directory, by name; links not followed."""
    with _fd(_walk(root, split_path(request.path))) as fd:
        entries: list[dict[str, Any]] = []
        with os.scandir(fd) as scan:
            for entry in scan:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                entries.append({"name": entry.name[:protocol.MAX_NAME_CHARS], "type": _entry_type(info.st_mode),
                                "size": info.st_size, "mtime": int(info.st_mtime * 1000)})
    entries.sort(key=lambda e: str(e["name"]))
    return protocol.FileReply(id=request.id, entries=tuple(entries[:protocol.MAX_DIR_ENTRIES]),
                              truncated=len(entries) > protocol.MAX_DIR_ENTRIES)


def _parent_and_name(root: str, path: str, *, create: bool = False) -> tuple[int, str]:
    parts = split_path(path)
    if not parts:
        raise FileRefused("invalid_path", "the workspace itself is a directory, not a file")
    return _walk(root, parts[:-1], create=create), parts[-1]


def read_file(root: str, request: protocol.FileRead) -> protocol.FileReply:
    """One chunk of a regular file from `offset`, and the file's whole size (bytes)."""
    parent, name = _parent_and_name(root, request.path)
    with _fd(parent), _fd(_regular(parent, name, os.O_RDONLY)) as fd:
        size = os.fstat(fd).st_size
        data = os.pread(fd, min(request.length, protocol.FILE_CHUNK_BYTES), request.offset)
    return protocol.FileReply(id=request.id, data=base64.b64encode(data).decode(), size=size)


def write_file(root: str, request: protocol.FileWrite) -> protocol.FileReply:
    """Write one chunk: offset 0 creates or truncates the file (parents made), later ones append in order.

    The first chunk is refused (`too_large`) if the file's whole `size` would take the workspace past
    `limit_bytes` (what the file replaces does not count); the tmpfs's own size bounds it as well.
    """
    try:
        data = base64.b64decode(request.data, validate=True)
    except (binascii.Error, ValueError):
        raise FileRefused("io", "the chunk is not base64") from None
    if request.offset + len(data) > request.size:
        raise FileRefused("io", "a chunk past the file's announced size")
    parent, name = _parent_and_name(root, request.path, create=request.offset == 0)
    with _fd(parent):
        if request.offset == 0:
            fd = _create(root, parent, name, request)
        else:
            fd = _regular(parent, name, os.O_WRONLY)
        with _fd(fd):
            if os.fstat(fd).st_size != request.offset:
                raise FileRefused("io", "chunks out of order")
            try:
                os.pwrite(fd, data, request.offset)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                    raise FileRefused("too_large", "the workspace is full") from None
                raise
            size = os.fstat(fd).st_size
    return protocol.FileReply(id=request.id, size=size)


def usage_bytes(root: str) -> int:
    """Bytes of the regular files under root (links not followed, each counted by its own size)."""
    total = 0
    # fwalk descends through directory fds (never through a name a link may have replaced meanwhile).
    for _directory, _dirs, names, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in names:
            with contextlib.suppress(OSError):
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return total


def _create(root: str, parent: int, name: str, request: protocol.FileWrite) -> int:
    """The file `name` opened for writing, empty: an existing regular file truncated, else a new one."""
    replaced = 0
    try:
        existing = _regular(parent, name, os.O_RDONLY)
    except FileRefused as refused:
        if refused.code != "not_found":
            raise
        existing = -1
    if existing >= 0:
        with _fd(existing):
            replaced = os.fstat(existing).st_size
    used = usage_bytes(root) - replaced
    if used + request.size > request.limit_bytes:
        raise FileRefused("too_large", f"the workspace holds {used} bytes; {request.size} more would pass "
                                       f"its {request.limit_bytes}-byte limit")
    if existing >= 0:
        return _regular(parent, name, os.O_WRONLY | os.O_TRUNC)
    try:
        # O_EXCL: a name that appeared meanwhile (a link among them) is never followed or reused.
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                       dir_fd=parent)
    except FileExistsError:
        raise FileRefused("invalid_path", f"{name!r} appeared while it was being created") from None


def delete(root: str, request: protocol.FileDelete) -> protocol.FileReply:
    """Remove a regular file or an empty directory (a link, FIFO or device is refused, not removed)."""
    parent, name = _parent_and_name(root, request.path)
    with _fd(parent):
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise FileRefused("not_found", f"no file {name!r}") from None
        if stat.S_ISDIR(info.st_mode):
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError as exc:
                if exc.errno == errno.ENOTEMPTY:
                    raise FileRefused("io", f"the directory {name!r} is not empty") from None
                raise
        elif stat.S_ISREG(info.st_mode):
            os.unlink(name, dir_fd=parent)
        else:
            raise FileRefused("invalid_path", f"{name!r} is {_kind(info.st_mode)}, not a file")
    return protocol.FileReply(id=request.id)


class _Glob:
    """A glob over relative paths, matched a name at a time: a `**` name is any number of directories
    (none too), `*` and `?` stay within one name. Linear in the path and the pattern (no regex over the
    whole path, which backtracks exponentially on patterns like `**/**/**/x`)."""

    def __init__(self, pattern: str) -> None:
        parts: list[str] = []
        for part in pattern.split("/"):
            if part == "**" and parts and parts[-1] == "**":
                continue  # `**/**` is `**`
            parts.append(part)
        self._parts = tuple(parts)
        self._names = [re.compile(fnmatch.translate(part)) for part in parts]

    def match(self, relative: str) -> bool:
        names = relative.split("/")
        parts = self._parts

        @functools.cache
        def at(i: int, j: int) -> bool:  # parts[i:] matches names[j:]
            if i == len(parts):
                return j == len(names)
            if parts[i] == "**":
                return any(at(i + 1, k) for k in range(j, len(names) + 1))
            return j < len(names) and self._names[i].match(names[j]) is not None and at(i + 1, j + 1)

        return at(0, 0)


def find(root: str, request: protocol.FileFind) -> protocol.FileReply:
    """The regular files under root whose relative path matches a pattern, by path (links not followed)."""
    matchers = [_Glob(check) for check in ("/".join(split_path(p)) for p in request.patterns) if check]
    entries: list[dict[str, Any]] = []
    truncated = False
    for directory, dirs, names, dir_fd in os.fwalk(root, follow_symlinks=False):  # by fd, as usage_bytes
        dirs.sort()
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(directory, name), root)
            if not any(m.match(relative) for m in matchers):
                continue
            with contextlib.suppress(OSError):
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(info.st_mode):
                    if len(entries) >= protocol.MAX_DIR_ENTRIES or len(relative) > protocol.MAX_PATH_CHARS:
                        truncated = True
                        continue
                    entries.append({"name": relative, "type": "file", "size": info.st_size,
                                    "mtime": int(info.st_mtime * 1000)})
    return protocol.FileReply(id=request.id, entries=tuple(entries), truncated=truncated)


def handle(root: str, request: protocol.FileRequest) -> protocol.FileReply:
    """Answer one file request; a refusal is a reply with its code, never an exception."""
    try:
        if isinstance(request, protocol.FileList):
            return list_dir(root, request)
        if isinstance(request, protocol.FileRead):
            return read_file(root, request)
        if isinstance(request, protocol.FileWrite):
            return write_file(root, request)
        if isinstance(request, protocol.FileFind):
            return find(root, request)
        return delete(root, request)
    except FileRefused as refused:
        return protocol.FileReply(id=request.id, error=refused.code, message=str(refused)[:protocol.MAX_TEXT_CHARS])
    except OSError as exc:
        return protocol.FileReply(id=request.id, error="io", message=f"{type(exc).__name__}: {exc.strerror}"[:1000])
