"""PackageStore: each wheel unpacked once, read-only, under the wheel's content hash.

`<root>/sha256-<hex>/` holds what `pip install --no-deps --target` makes of the wheel whose SHA-256 is
<hex> (byte-compiled), with every file 0444 and every directory 0555. A tree appears only complete (it is
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
from pathlib import Path

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 300
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

    def tree(self, wheel: Path) -> Path:
        """The store's read-only tree of this wheel, unpacking it first if no worker has yet."""
        target = self.root / f"sha256-{self.digest(wheel)}"
        if target.is_dir():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                   "--no-deps", "--target", str(staging), str(wheel)]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        if completed.returncode != 0:
            remove_tree(staging)
            raise StoreError(f"unpacking {wheel.name} failed: {completed.stderr.strip()[-500:]}")
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: nothing in a sandbox runs them
        seal(staging)
        try:
            staging.rename(target)  # atomic; a concurrent unpack of the same wheel keeps either (identical) tree
        except OSError:
            remove_tree(staging)
        log.info("package store: unpacked %s into %s", wheel.name, target.name)
        return target


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


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
