"""WheelLock: the index's last answer per package, kept in the wheel cache, for when the index is down.

`<cache>/lock.json` maps a package's canonical name to the allowlist range it was resolved for, and the
wheel the index named as best in that range (version, file name, SHA-256). It is written only from the
index's answers for the allowlist's whole range (never from a narrower request), so it says the same to
every tenant. When the index cannot be reached, an install of that package takes the locked wheel if the
cache holds that very file (checked against the SHA-256) and the request allows its version. The worker
processes of a host share the file: each change is made under an flock, on what the file holds then.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
import threading
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from workers.index import Candidate, wheel_filename_of

log = logging.getLogger(__name__)

LOCK_FILE = "lock.json"
MAX_LOCKED = 4096


class WheelLock:
    """The locked wheel of each package (canonical name -> Candidate with its SHA-256, and its range)."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / LOCK_FILE
        self._flock_path = cache_dir / f"{LOCK_FILE}.flock"
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, str]] = self._load()

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable wheel lock %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {name: entry for name, entry in data.items()
                if isinstance(entry, dict) and all(isinstance(entry.get(k), str)
                                                   for k in ("range", "version", "filename", "sha256"))}

    def record(self, name: str, allowed: SpecifierSet, candidate: Candidate) -> None:
        """Remember candidate as the index's best of name within the allowlist's range (needs its SHA-256)."""
        if candidate.sha256 is None:
            return
        key = canonicalize_name(name)
        entry = {"range": str(allowed), "version": str(candidate.version), "filename": candidate.filename,
                 "sha256": candidate.sha256}
        with self._lock:
            if self._entries.get(key) == entry:
                return
            try:
                with self._flock_path.open("a") as flock:
                    fcntl.flock(flock, fcntl.LOCK_EX)  # released when closed
                    entries = self._load()  # what the host's other workers wrote meanwhile
                    if key not in entries and len(entries) >= MAX_LOCKED:
                        return
                    entries[key] = entry
                    self._save(entries)
                    self._entries = entries
            except OSError as exc:
                log.warning("could not write the wheel lock %s: %s", self.path, exc)

    def locked(self, name: str, allowed: SpecifierSet) -> Candidate | None:
        """The locked wheel of name for this allowlist range, or None (read from the file: another worker
        of the host may have written it)."""
        entries = self._load()
        with self._lock:
            self._entries = entries
            entry = entries.get(canonicalize_name(name))
        if entry is None or entry["range"] != str(allowed):
            return None
        filename = wheel_filename_of(name, entry["filename"])
        try:
            version = Version(entry["version"])
        except InvalidVersion:
            return None
        if filename is None:
            return None
        return Candidate(canonicalize_name(name), version, filename, entry["sha256"])

    def _save(self, entries: dict[str, dict[str, str]]) -> None:
        """Write the lock atomically (the caller holds the flock). Raises OSError."""
        descriptor, temporary = tempfile.mkstemp(prefix=".lock-", dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "w") as stream:
                json.dump(entries, stream, sort_keys=True)
            os.replace(temporary, self.path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)
            raise
