"""PackageInstaller: allowlisted wheels fetched on the worker host, resolved against the index.

The sandbox never gets a network: this host resolves the requested packages (each dependency checked
against the allowlist before it is fetched) to the best version the request and the allowlist allow on
the package index (workers.index; never "the best one cached", which would depend on what other tenants
installed), downloads binary wheels only into a shared wheel cache (verified against the index's
SHA-256), and unpacks each wheel once into the read-only package store (workers.store). A sandbox's own
site directory (workers.site) is assembled from copies of those trees.

Each package is looked up for the allowlist's whole range (one answer per name, cached briefly, the
same for every tenant); only a request that the answer does not satisfy asks the index again, for its
narrower range. When the index cannot be reached, the wheel lock's wheel (workers.wheel_lock) is used if
the cache holds it. One Deadline bounds the whole install: every pip call gets what is left of it.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from core.policies import PackagePolicy
from workers.deadline import Deadline, DeadlinePassed
from workers.index import (
    UNAVAILABLE,
    Answer,
    AnswerCache,
    Candidate,
    IndexUnavailable,
    PackageIndex,
    PipIndex,
    wheel_filename_of,
)
from workers.store import PackageStore, StoreError, remove_stale
from workers.wheel_lock import WheelLock

log = logging.getLogger(__name__)


@dataclass
class InstallPlan:
    """What one request resolved to: wheels to install, and the per-package outcome."""

    deadline: Deadline
    wheels: list[Path] = field(default_factory=list)
    installed: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


class ResolutionError(Exception):
    """A package or one of its dependencies cannot be installed; the message is the user's reason."""


class PackageInstaller:
    """Resolves, fetches and installs allowlisted packages."""

    def __init__(self, policy: PackagePolicy, cache_dir: Path, *, index: PackageIndex | None = None,
                 install_timeout_ms: int = 240_000) -> None:
        self._policy = policy
        self._cache = cache_dir
        self._cache.mkdir(parents=True, exist_ok=True)
        self._index = index or PipIndex()
        self._install_timeout_ms = install_timeout_ms
        self.answers = AnswerCache()
        self.lock = WheelLock(cache_dir)
        self.store = PackageStore(cache_dir / "store")
        # What crashed workers left half done (a live worker's are younger than an install may take).
        remove_stale(self._cache, (".download-", ".lock-"))
        remove_stale(self.store.root, (".staging-",))

    def plan(self, specs: list[str], present: dict[str, str]) -> InstallPlan:
        """Resolve each requested package against what the sandbox already has (name -> version), within
        the install's time budget (the plan's deadline, also the one of `trees`)."""
        plan = InstallPlan(Deadline.after_ms(self._install_timeout_ms))
        chosen: dict[str, tuple[Version, Path]] = {}
        for spec in specs:
            requirement, reason = self._policy.check(spec)
            name = requirement.name if requirement else spec
            if reason or requirement is None:
                plan.failed.append({"name": name, "reason": reason or "invalid"})
                continue
            attempt: dict[str, tuple[Version, Path]] = dict(chosen)
            try:
                version = self._resolve(requirement, present, attempt, plan.deadline, needed_by=None)
            except ResolutionError as exc:
                plan.failed.append({"name": requirement.name, "reason": str(exc)})
                continue
            chosen = attempt
            plan.installed.append({"name": requirement.name, "version": version})
        plan.wheels = [path for _, path in chosen.values()]
        return plan

    def _resolve(self, requirement: Requirement, present: dict[str, str],
                 chosen: dict[str, tuple[Version, Path]], deadline: Deadline, *, needed_by: str | None) -> str:
        name = canonicalize_name(requirement.name)
        who = f" (needed by {needed_by})" if needed_by else ""
        if name in present:
            if requirement.specifier.contains(present[name], prereleases=True):
                return present[name]
            raise ResolutionError(f"{requirement}{who} conflicts with the installed {name} {present[name]}")
        if name in chosen:
            version = chosen[name][0]
            if requirement.specifier.contains(version, prereleases=True):
                return str(version)
            raise ResolutionError(f"{requirement}{who} conflicts with {name} {version}")
        allowed = self._policy.get(name)
        if allowed is None:
            raise ResolutionError(f"{name}{who} is not in the package allowlist")
        version, wheel = self._wheel(name, requirement.specifier, allowed.versions, deadline)
        chosen[name] = (version, wheel)
        for dependency in _dependencies(wheel):
            self._resolve(dependency, present, chosen, deadline, needed_by=name)
        return str(version)

    def _wheel(self, name: str, requested: SpecifierSet, allowed: SpecifierSet,
               deadline: Deadline) -> tuple[Version, Path]:
        """The index's best wheel within requested & allowed, from the cache when it holds that very file;
        the lock's wheel when the index cannot be reached."""
        answer = self._answer(name, allowed, deadline)
        if isinstance(answer, Candidate) and answer.sha256 is not None:
            self.lock.record(name, allowed, answer)
        if not (isinstance(answer, Candidate) and requested.contains(answer.version, prereleases=True)) \
                and answer is not None and answer != UNAVAILABLE and str(requested):
            answer = self._ask(name, requested & allowed, deadline)  # a narrower request: not cached
        if answer == UNAVAILABLE:
            return self._locked_wheel(name, requested, allowed)
        if not isinstance(answer, Candidate) or not requested.contains(answer.version, prereleases=True):
            raise ResolutionError(f"no binary wheel of {name}{requested & allowed} for this sandbox's Python on "
                                  "the index")
        path = self._cache / answer.filename
        if not path.is_file() or not self._matches(path, answer.sha256):
            try:
                deadline.timeout_s()
                path = self._index.download(answer, self._cache, deadline)
            except (OSError, DeadlinePassed) as exc:
                log.warning("%s", exc)
                raise ResolutionError(f"{answer.filename} could not be downloaded") from None
            if not self._matches(path, answer.sha256):
                raise ResolutionError(f"{answer.filename} does not match the index's SHA-256")
        return answer.version, path

    def _answer(self, name: str, allowed: SpecifierSet, deadline: Deadline) -> Answer:
        """The index's best of name in the allowlist's range (cached by name; failures briefly too)."""
        known, answer = self.answers.get(name, allowed)
        if not known:
            answer = self._ask(name, allowed, deadline)
            self.answers.put(name, allowed, answer)
        return answer

    def _ask(self, name: str, specifier: SpecifierSet, deadline: Deadline) -> Answer:
        try:
            candidate = self._index.best(name, specifier, deadline)
        except IndexUnavailable as exc:
            log.warning("package index unavailable: %s", exc)
            return UNAVAILABLE
        if candidate is not None and wheel_filename_of(name, candidate.filename) != candidate.filename:
            log.warning("the index named %r for %s: not a wheel of it", candidate.filename, name)
            return None
        return candidate

    def _locked_wheel(self, name: str, requested: SpecifierSet, allowed: SpecifierSet) -> tuple[Version, Path]:
        """The lock's wheel of name, if the cache holds it unchanged and the request allows it."""
        locked = self.lock.locked(name, allowed)
        if locked is None or not requested.contains(locked.version, prereleases=True):
            raise ResolutionError(f"the package index cannot be reached (or has no wheel of {name}"
                                  f"{requested & allowed}) and no cached wheel of it is known")
        path = self._cache / locked.filename
        if not path.is_file() or not self._matches(path, locked.sha256):
            raise ResolutionError(f"the package index cannot be reached and {locked.filename} is not cached")
        return locked.version, path

    def _matches(self, path: Path, sha256: str | None) -> bool:
        return sha256 is None or self.store.digest(path) == sha256

    def trees(self, plan: InstallPlan) -> dict[str, Path]:
        """The store's read-only tree of each of plan's wheels (canonical name -> tree), unpacking what is not
        there yet within the plan's deadline."""
        trees: dict[str, Path] = {}
        for wheel in plan.wheels:
            name, _, _, _ = parse_wheel_filename(wheel.name)
            try:
                trees[str(name)] = self.store.tree(wheel, plan.deadline)
            except StoreError as exc:
                raise ResolutionError(str(exc)) from None
        return trees


def _dependencies(wheel: Path) -> list[Requirement]:
    """The wheel's unconditional dependencies for this Python (Requires-Dist, markers evaluated, no extras)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    requirements = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            requirement.marker = None
            requirements.append(requirement)
    return requirements
