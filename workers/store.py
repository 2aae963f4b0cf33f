"""PackageStore: each wheel unpacked once, read-only, under the wheel's content hash.

`<root>/sha256-<hex>.<LAYOUT>/` holds what `pip install --no-deps --target` makes of the wheel whose SHA-256 is
<hex>, with every file 0444 and every directory 0555 and every file's modification and access time set
to STORE_EPOCH_S (so a copy of it tells nobody when some tenant first unpacked the wheel). Its modules are
byte-compiled against their content hash, not their time (unchecked-hash .pyc files: an import never
recompiles and a .pyc holds no time either). A tree appears only complete (it is
built in a staging directory and renamed into place) and is never changed afterwards: no sandbox and no
session's site directory ever refers to its files (workers.site copies them), so nothing can write
through to it and nothing about it (link count, ctime, atime through a mount) changes when a tenant
installs a package.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from workers.deadline import Deadline, DeadlinePassed

log = logging.getLogger(__name__)

# How a tree is made; trees of an earlier layout (real file times, time-checked .pyc) are never used.
LAYOUT = "v2"
STORE_EPOCH_S = 315_532_800  # 1980-01-01T00:00:00Z, the earliest time a wheel (zip) can hold
STALE_AFTER_S = 3600  # a .staging-*/.download-* directory this old was left by a crashed worker
FILE_MODE = 0o444
DIR_MODE = 0o555
_HASH_CHUNK_BYTES = 1 << 20


class StoreError(Exception):
    """A wheel could not be unpacked; the message is the user's reason."""


class PackageStore:
    """Read-only unpacked wheels under root, addressed by the wheel's SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._digests: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def digest(self, wheel: Path) -> str:
        """The wheel file's SHA-256 (hex), remembered per (path, size, mtime)."""
        stat = wheel.stat()
        key = (str(wheel), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._digests.get(key)
        if known is None:
            known = file_sha256(wheel)
            with self._lock:
                self._digests[key] = known
        return known

    def tree(self, wheel: Path, deadline: Deadline) -> Path:
        """The store's read-only tree of this wheel, unpacking it first (within deadline) if no worker has yet."""
        target = self.root / f"sha256-{self.digest(wheel)}.{LAYOUT}"
        if target.is_dir():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            # --no-compile: pip would compile against the files' times; compiled below, against their hashes.
            _pip(["install", "--quiet", "--disable-pip-version-check", "--no-index", "--no-deps", "--no-compile",
                  "--target", str(staging), str(wheel)], deadline, f"unpacking {wheel.name}")
            shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: nothing in a sandbox runs them
            set_times(staging)
            _run([sys.executable, "-m", "compileall", "-q", "-q", "--invalidation-mode", "unchecked-hash",
                  str(staging)], deadline, f"compiling {wheel.name}")
            set_times(staging)  # the new .pyc files too
            seal(staging)
            try:
                staging.rename(target)  # atomic; a concurrent unpack of the same wheel keeps either (identical) tree
            except OSError:
                pass
        finally:
            if staging.exists():
                remove_tree(staging)
        log.info("package store: unpacked %s into %s", wheel.name, target.name)
        return target


def _pip(arguments: list[str], deadline: Deadline, what: str) -> None:
    _run([sys.executable, "-m", "pip", *arguments], deadline, what)


def _run(command: list[str], deadline: Deadline, what: str) -> None:
    """Run command within what is left of deadline; StoreError (the user's reason) if it fails."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=deadline.timeout_s(),
                                   check=False)
    except (DeadlinePassed, subprocess.TimeoutExpired):
        raise StoreError(f"{what} ran out of the install's time") from None
    except (subprocess.SubprocessError, OSError) as exc:
        raise StoreError(f"{what} failed: {exc}") from None
    if completed.returncode != 0:
        raise StoreError(f"{what} failed: {completed.stderr.strip()[-500:]}")


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def set_times(tree: Path) -> None:
    """Every file's and directory's modification and access time: STORE_EPOCH_S."""
    for directory, _dirs, files in os.walk(tree):
        for name in files:
            os.utime(os.path.join(directory, name), ns=(STORE_EPOCH_S * 10**9,) * 2, follow_symlinks=False)
        os.utime(directory, ns=(STORE_EPOCH_S * 10**9,) * 2)


def remove_stale(directory: Path, prefixes: tuple[str, ...], *, older_than_s: float = STALE_AFTER_S) -> list[str]:
    """Remove what crashed workers left in directory (names with one of prefixes, older than older_than_s;
    a younger one may be another worker's unpack in progress); the names removed. Never raises."""
    removed: list[str] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            if entry.name.startswith(prefixes) and time.time() - entry.lstat().st_mtime > older_than_s:
                if entry.is_dir():
                    remove_tree(entry)
                else:
                    entry.unlink()
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def seal(tree: Path) -> None:
    """Make tree read-only for everyone: files 0444, directories 0555 (the deepest first)."""
    for directory, _dirs, files in os.walk(tree, topdown=False):
        for name in files:
            os.chmod(os.path.join(directory, name), FILE_MODE, follow_symlinks=False)
        os.chmod(directory, DIR_MODE)


def remove_tree(tree: Path) -> None:
    """Remove a (possibly sealed) tree; never raises."""
    for directory, _dirs, _files in os.walk(tree):
        try:
            os.chmod(directory, 0o755)
        except OSError:
            pass
    shutil.rmtree(tree, ignore_errors=True)
