"""PackageIndex: which wheel of a package the index offers as best, and fetching it.

Resolution asks the index (what pip is configured to use on this host), never the local cache: the best
version a request and the allowlist allow is the same for every tenant, whatever anyone installed before.
PipIndex keeps each answer for RESOLUTION_TTL_S (a short-lived lock, so a session's dependencies are not
looked up again on every install); the wheel itself is fetched only when the cache does not hold it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 300
RESOLUTION_TTL_S = 600.0


@dataclass(frozen=True)
class Candidate:
    """One wheel the index offers: its file name and, when the index gives it, its SHA-256 (hex)."""

    name: str
    version: Version
    filename: str
    sha256: str | None = None


class PackageIndex(Protocol):
    """Where wheels come from."""

    def best(self, name: str, specifier: SpecifierSet) -> Candidate | None:
        """The newest binary wheel of name within specifier for this Python, or None."""

    def download(self, candidate: Candidate, dest: Path) -> Path:
        """Fetch candidate's wheel into dest (atomically); its path. Raises OSError if it cannot."""


class PipIndex:
    """The index pip is configured with on this host, asked through pip itself."""

    def __init__(self, *, ttl_s: float = RESOLUTION_TTL_S) -> None:
        self._ttl_s = ttl_s
        self._answers: dict[tuple[str, str], tuple[float, Candidate | None]] = {}
        self._lock = threading.Lock()

    def best(self, name: str, specifier: SpecifierSet) -> Candidate | None:
        key = (canonicalize_name(name), str(specifier))
        now = time.monotonic()
        with self._lock:
            known = self._answers.get(key)
        if known is not None and known[0] > now:
            return known[1]
        candidate = self._ask(name, specifier)
        if candidate is not None:  # a failed look-up (network) is asked again next time
            with self._lock:
                self._answers[key] = (now + self._ttl_s, candidate)
        return candidate

    def _ask(self, name: str, specifier: SpecifierSet) -> Candidate | None:
        with tempfile.TemporaryDirectory(prefix="penny-resolve-") as scratch:
            report = Path(scratch) / "report.json"
            command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps",
                       "--only-binary=:all:", "--quiet", "--disable-pip-version-check", "--report", str(report),
                       f"{name}{specifier}"]
            completed = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                       check=False)
            if completed.returncode != 0 or not report.exists():
                log.warning("resolving %s%s failed: %s", name, specifier, completed.stderr.strip()[-500:])
                return None
            return candidate_of(json.loads(report.read_text()))

    def download(self, candidate: Candidate, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=dest) as scratch:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                       "--no-deps", "--only-binary=:all:", "--dest", scratch,
                       f"{candidate.name}=={candidate.version}"]
            completed = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                       check=False)
            fetched = Path(scratch) / candidate.filename
            if completed.returncode != 0 or not fetched.is_file():
                raise OSError(f"downloading {candidate.filename} failed: {completed.stderr.strip()[-300:]}")
            target = dest / candidate.filename
            os.replace(fetched, target)  # atomic: a reader sees the whole wheel or none
            return target


def candidate_of(report: dict) -> Candidate | None:
    """The one wheel of a `pip install --dry-run --no-deps --report` report (format version 1)."""
    try:
        item = report["install"][0]
        url = item["download_info"]["url"]
        filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        name, version, _, _ = parse_wheel_filename(filename)
        hashes = item["download_info"].get("archive_info", {}).get("hashes", {})
        sha256 = hashes.get("sha256")
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, InvalidVersion):
        return None
    return Candidate(str(name), version, filename, sha256 if isinstance(sha256, str) else None)
