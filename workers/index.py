"""PackageIndex: which wheel of a package the index offers as best, and fetching it; AnswerCache of its answers.

Resolution asks the index (what pip is configured to use on this host), never the local cache: the best
version a request and the allowlist allow is the same for every tenant, whatever anyone installed before.
AnswerCache keeps the index's answer for a package (keyed by its name) for RESOLUTION_TTL_S when it named
a wheel, and for NEGATIVE_TTL_S when it did not or could not be reached, so an index that is down is not
asked again by every install. Every pip call gets at most what is left of the install's Deadline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from workers.deadline import Deadline, DeadlinePassed

log = logging.getLogger(__name__)

RESOLUTION_TTL_S = 600.0
NEGATIVE_TTL_S = 30.0
MAX_ANSWERS = 1024  # package names; more than any allowlist holds
_VERSIONS_LISTED = re.compile(r"\(from versions: (?!none\))")
LOOKUP_TIMEOUT_S = 60.0  # one look-up's share of the install's time at most: the rest may unpack a cached wheel


class IndexUnavailable(Exception):
    """The index could not be asked (unreachable, too slow, pip failed)."""


@dataclass(frozen=True)
class Candidate:
    """One wheel the index offers: its file name and, when the index gives it, its SHA-256 (hex)."""

    name: str
    version: Version
    filename: str
    sha256: str | None = None


class PackageIndex(Protocol):
    """Where wheels come from."""

    def best(self, name: str, specifier: SpecifierSet, deadline: Deadline) -> Candidate | None:
        """The newest binary wheel of name within specifier for this Python, or None if there is none.
        Raises IndexUnavailable if the index cannot answer (within deadline)."""

    def download(self, candidate: Candidate, dest: Path, deadline: Deadline) -> Path:
        """Fetch candidate's wheel into dest (atomically); its path. Raises OSError if it cannot."""


def wheel_filename_of(name: str, filename: object) -> str | None:
    """filename if it is a plain wheel file name (no directory) of project name; None otherwise."""
    if not isinstance(filename, str) or not filename or Path(filename).name != filename or filename in (".", ".."):
        return None
    try:
        project, _, _, _ = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return filename if project == canonicalize_name(name) else None


class PipIndex:
    """The index pip is configured with on this host, asked through pip itself (no caching here)."""

    def best(self, name: str, specifier: SpecifierSet, deadline: Deadline) -> Candidate | None:
        with tempfile.TemporaryDirectory(prefix="penny-resolve-") as scratch:
            report = Path(scratch) / "report.json"
            command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                       "--only-binary=:all:", "--quiet", "--disable-pip-version-check", "--report", str(report),
                       f"{name}{specifier}"]
            try:
                completed = subprocess.run(command, capture_output=True, text=True, check=False,
                                           timeout=deadline.timeout_s(LOOKUP_TIMEOUT_S))
            except (DeadlinePassed, subprocess.SubprocessError, OSError) as exc:
                raise IndexUnavailable(f"resolving {name}{specifier}: {exc}") from None
            if completed.returncode != 0 or not report.exists():
                stderr = completed.stderr.strip()
                log.warning("resolving %s%s failed: %s", name, specifier, stderr[-500:])
                # pip says "No matching distribution ... (from versions: none)" offline too: only a list of
                # versions shows that the index answered (and has no wheel in the range).
                if _VERSIONS_LISTED.search(stderr):
                    return None
                raise IndexUnavailable(f"resolving {name}{specifier} failed")
            return candidate_of(json.loads(report.read_text()), name)

    def download(self, candidate: Candidate, dest: Path, deadline: Deadline) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=dest) as scratch:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                       "--no-deps", "--only-binary=:all:", "--dest", scratch,
                       f"{candidate.name}=={candidate.version}"]
            try:
                completed = subprocess.run(command, capture_output=True, text=True, check=False,
                                           timeout=deadline.timeout_s())
            except (DeadlinePassed, subprocess.SubprocessError) as exc:
                raise OSError(f"downloading {candidate.filename}: {exc}") from None
            fetched = Path(scratch) / candidate.filename
            if completed.returncode != 0 or not fetched.is_file():
                raise OSError(f"downloading {candidate.filename} failed: {completed.stderr.strip()[-300:]}")
            target = dest / candidate.filename
            os.replace(fetched, target)  # atomic: a reader sees the whole wheel or none
            return target


def candidate_of(report: dict, name: str) -> Candidate | None:
    """The one wheel of a `pip install --dry-run --no-deps --report` report (format version 1), if it is a
    wheel of project name with a plain file name."""
    try:
        item = report["install"][0]
        url = item["download_info"]["url"]
        filename = wheel_filename_of(name, unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
        if filename is None:
            return None
        project, version, _, _ = parse_wheel_filename(filename)
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        sha256 = hashes.get("sha256")
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, InvalidVersion):
        return None
    return Candidate(str(project), version, filename, sha256 if isinstance(sha256, str) else None)


UNAVAILABLE = "unavailable"
Answer = Candidate | None | str  # a wheel, no wheel, or UNAVAILABLE


class AnswerCache:
    """The index's recent answers, keyed by package name (one per name, for one specifier), bounded."""

    def __init__(self, *, ttl_s: float = RESOLUTION_TTL_S, negative_ttl_s: float = NEGATIVE_TTL_S,
                 max_entries: int = MAX_ANSWERS) -> None:
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._max_entries = max_entries
        self._answers: OrderedDict[str, tuple[float, str, Answer]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, specifier: SpecifierSet) -> tuple[bool, Answer]:
        """(True, answer) if the index answered for name and specifier within its TTL; (False, None) if not."""
        key = canonicalize_name(name)
        now = time.monotonic()
        with self._lock:
            self._evict(now)
            known = self._answers.get(key)
        if known is None or known[1] != str(specifier):
            return False, None
        return True, known[2]

    def put(self, name: str, specifier: SpecifierSet, answer: Answer) -> None:
        ttl_s = self._ttl_s if isinstance(answer, Candidate) else self._negative_ttl_s
        now = time.monotonic()
        with self._lock:
            key = canonicalize_name(name)
            self._answers.pop(key, None)
            self._answers[key] = (now + ttl_s, str(specifier), answer)
            self._evict(now)

    def __len__(self) -> int:
        return len(self._answers)

    def _evict(self, now: float) -> None:
        """Drop expired answers, then the oldest beyond max_entries (caller holds the lock)."""
        for key in [k for k, (expires, _, _) in self._answers.items() if expires <= now]:
            del self._answers[key]
        while len(self._answers) > self._max_entries:
            self._answers.popitem(last=False)
