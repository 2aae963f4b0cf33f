"""SiteDir: one sandbox's installed packages, as generations swapped in atomically.

The sandbox sees `root` read-only at /opt/penny/site and imports from /opt/penny/site/current, a relative
symbolic link to one generation directory `g<N>`. An install never changes a generation: it assembles a
new one from the package store's trees (the packages kept, plus the new ones, by name) and renames a new
`current` link over the old one, so the sandbox sees either the old set or the new one, never a mix, and a
failed install leaves the old set in place.

Files are copied out of the store, never hard-linked: a hard link would let an install write through to
the store (a copy onto an existing name is a write to the shared inode), and the shared inode's link
count and ctime would tell every sandbox when any other tenant installed the same package. A copy is a
new inode with one link, so all a sandbox can observe is its own installs. Each file is created with
O_EXCL: nothing is ever written onto an existing name. Every copy's modification and access time is the
store's constant (workers.store.STORE_EPOCH_S), never when the store file was made or last read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from workers.store import STORE_EPOCH_S, remove_tree

CURRENT = "current"
_COPY_CHUNK_BYTES = 1 << 24


class SiteConflict(Exception):
    """Two packages would install the same file; the message names it."""


class SiteDir:
    """The generations of one sandbox's site directory (root exists, writable by this worker only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._generation = 0
        # Canonical distribution name -> the store tree it came from, for the current generation.
        self.trees: dict[str, Path] = {}
        root.mkdir(parents=True, exist_ok=True)
        if not (root / CURRENT).is_symlink():
            (root / "g0").mkdir(mode=0o755, exist_ok=True)
            os.symlink("g0", root / CURRENT)
        root.chmod(0o755)

    @property
    def current(self) -> Path:
        """The generation the sandbox imports from now."""
        return self.root / os.readlink(self.root / CURRENT)

    def install(self, trees: Mapping[str, Path]) -> None:
        """Swap in a new generation: the current packages with `trees` (name -> store tree) added or replaced.

        Raises SiteConflict (the current generation stays) if two packages hold the same file.
        """
        if not trees:
            return
        with self._lock:
            wanted = {**self.trees, **trees}
            self._generation += 1
            name = f"g{self._generation}"
            generation = self.root / name
            while generation.exists():  # left by a crashed worker: never reused
                self._generation += 1
                name = f"g{self._generation}"
                generation = self.root / name
            generation.mkdir(mode=0o755)
            try:
                for tree in wanted.values():
                    copy_tree(tree, generation)
            except BaseException:
                remove_tree(generation)
                raise
            link = self.root / f".{name}.link"
            os.symlink(name, link)
            previous = self.current
            os.replace(link, self.root / CURRENT)  # the atomic swap
            self.trees = wanted
            remove_tree(previous)  # files open in the sandbox stay readable until it closes them


def copy_tree(source: Path, target: Path) -> None:
    """Copy source's directories and regular files into target: new inodes, never onto an existing name."""
    for directory, dirs, files in os.walk(source):
        relative = os.path.relpath(directory, source)
        into = target if relative == "." else target / relative
        for name in dirs:
            try:
                (into / name).mkdir(mode=0o755)
            except FileExistsError:
                if not (into / name).is_dir() or (into / name).is_symlink():  # a file of another package
                    raise SiteConflict(f"two packages install {name}, one as a file, one as a directory") from None
        for name in files:
            copy_file(Path(directory) / name, into / name)


def copy_file(source: Path, target: Path) -> None:
    """A new file at target (0444) with source's bytes, its times STORE_EPOCH_S; SiteConflict if target exists."""
    try:
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    except FileExistsError:
        raise SiteConflict(f"two packages install {target.name}") from None
    except NotADirectoryError:  # a parent directory of target is another package's file
        raise SiteConflict(f"two packages install {target.parent.name}, one as a file, one as a directory") from None
    try:
        inp = _open_quietly(source)
        try:
            stat = os.fstat(inp)
            offset = 0
            while offset < stat.st_size:
                sent = os.sendfile(out, inp, offset, min(_COPY_CHUNK_BYTES, stat.st_size - offset))
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(inp)
        os.fchmod(out, 0o444)  # whatever the umask
        # The store's files all have the same time; its access time would tell when someone last read it.
        os.utime(out, ns=(STORE_EPOCH_S * 10**9,) * 2)
    finally:
        os.close(out)


def _open_quietly(source: Path) -> int:
    """source opened for reading, without updating its access time where the kernel lets us."""
    try:
        return os.open(source, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs the file's owner
        return os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
