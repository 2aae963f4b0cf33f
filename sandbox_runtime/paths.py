"""Where a path really leads: what the filesystem policy judges (see sandbox_runtime.guard).

`resolve(path, base)` gives the absolute path the kernel will reach when it opens `path` relative to the
directory `base`, with os.path.realpath's semantics (non-strict): `.` and `..` are taken physically, every
symbolic link is followed, the /proc magic links included (`/proc/self`, `/dev/fd` -> `/proc/self/fd`,
`/proc/<pid>/fd/<n>`, `/proc/<pid>/cwd`, `/proc/<pid>/root`); a component that is not there (yet) is taken
as written, so a file about to be created resolves through its parent. A link whose target is no path
(`pipe:[123]`, `socket:[…]`) resolves under the link's own directory, i.e. under /proc.

Written to be called from the audit hook: it looks up no module global and no builtin at call time
(everything it calls is bound as a default argument when the hook is installed, so patching os, stat or
this module changes nothing), takes only exact `str`, and calls no method of an object user code made.
"""

from __future__ import annotations

import _stat
import posix
from typing import Any

MAX_SYMLINKS = 40  # as the Linux kernel (ELOOP)


def resolve(path: str, base: str, lstat: Any = posix.lstat, readlink: Any = posix.readlink,
            is_link: Any = _stat.S_ISLNK, oserror: Any = OSError, max_links: int = MAX_SYMLINKS) -> str:
    """The absolute, symlink-free path `path` (relative to the absolute directory `base`) leads to."""
    if not path.startswith("/"):
        path = base + "/" + path
    todo = path.split("/")
    todo.reverse()  # a stack: the next component is last
    parts: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "" or part == ".":
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
        current = "/" + "/".join(parts)
        try:
            mode = lstat(current).st_mode
        except oserror:
            continue  # not there (yet): taken as written
        if not is_link(mode):
            continue
        links += 1
        if links > max_links:
            return current  # the kernel gives up too (ELOOP); judge what we reached
        try:
            target = readlink(current)
        except oserror:
            continue
        parts.pop()
        if target.startswith("/"):
            parts.clear()
        more = target.split("/")
        more.reverse()
        todo.extend(more)
    return "/" + "/".join(parts)


def resolve_parent(path: str, base: str, resolve: Any = resolve) -> str:
    """Like resolve(), but the last component itself is not followed (what unlink, rename, mkdir and
    symlink act on: the name, not what it points to)."""
    if not path.startswith("/"):
        path = base + "/" + path
    path = path.rstrip("/")
    cut = path.rfind("/")
    parent, name = path[:cut], path[cut + 1:]
    if name == "" or name == "." or name == "..":
        return resolve(path, "/")
    head = resolve(parent, "/") if parent else "/"
    return head.rstrip("/") + "/" + name
