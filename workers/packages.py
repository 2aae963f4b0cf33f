"""PackageInstaller: allowlisted wheels fetched on the worker host, resolved against the index.

The sandbox never gets a network: this host resolves the requested packages (each dependency checked
against the allowlist before it is fetched) to the best version the request and the allowlist allow on
the package index (workers.index; never "the best one cached", which would depend on what other tenants
installed), downloads binary wheels only into a shared wheel cache (verified against the index's
SHA-256), and unpacks each wheel once into the read-only package store (workers.store). A sandbox's own
site directory (workers.site) is assembled from copies of those trees.
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
from workers.index import PackageIndex, PipIndex
from workers.store import PackageStore, StoreError

log = logging.getLogger(__name__)


@dataclass
class InstallPlan:
    """What one request resolved to: wheels to install, and the per-package outcome."""

    wheels: list[Path] = field(default_factory=list)
    installed: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)


class ResolutionError(Exception):
    """A package or one of its dependencies cannot be installed; the message is the user's reason."""


class PackageInstaller:
    """Resolves, fetches and installs allowlisted packages."""

    def __init__(self, policy: PackagePolicy, cache_dir: Path, *, index: PackageIndex | None = None) -> None:
        self._policy = policy
        self._cache = cache_dir
        self._cache.mkdir(parents=True, exist_ok=True)
        self._index = index or PipIndex()
        self.store = PackageStore(cache_dir / "store")

    def plan(self, specs: list[str], present: dict[str, str]) -> InstallPlan:
        """Resolve each requested package against what the sandbox already has (name -> version)."""
        plan = InstallPlan()
        chosen: dict[str, tuple[Version, Path]] = {}
        for spec in specs:
            requirement, reason = self._policy.check(spec)
            name = requirement.name if requirement else spec
            if reason or requirement is None:
                plan.failed.append({"name": name, "reason": reason or "invalid"})
                continue
            attempt: dict[str, tuple[Version, Path]] = dict(chosen)
            try:
                version = self._resolve(requirement, present, attempt, needed_by=None)
            except ResolutionError as exc:
                plan.failed.append({"name": requirement.name, "reason": str(exc)})
                continue
            chosen = attempt
            plan.installed.append({"name": requirement.name, "version": version})
        plan.wheels = [path for _, path in chosen.values()]
        return plan

    def _resolve(self, requirement: Requirement, present: dict[str, str],
                 chosen: dict[str, tuple[Version, Path]], *, needed_by: str | None) -> str:
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
        specifier = requirement.specifier & allowed.versions
        version, wheel = self._wheel(name, specifier)
        chosen[name] = (version, wheel)
        for dependency in _dependencies(wheel):
            self._resolve(dependency, present, chosen, needed_by=name)
        return str(version)

    def _wheel(self, name: str, specifier: SpecifierSet) -> tuple[Version, Path]:
        """The index's best wheel within specifier, from the cache when it holds that very file."""
        candidate = self._index.best(name, specifier)
        if candidate is None:
            raise ResolutionError(f"no binary wheel of {name}{specifier} for this sandbox's Python on the index")
        path = self._cache / candidate.filename
        if not path.is_file() or not self._matches(path, candidate.sha256):
            try:
                path = self._index.download(candidate, self._cache)
            except OSError as exc:
                log.warning("%s", exc)
                raise ResolutionError(f"{candidate.filename} could not be downloaded") from None
            if not self._matches(path, candidate.sha256):
                raise ResolutionError(f"{candidate.filename} does not match the index's SHA-256")
        return candidate.version, path

    def _matches(self, path: Path, sha256: str | None) -> bool:
        return sha256 is None or self.store.digest(path) == sha256

    def trees(self, wheels: list[Path]) -> dict[str, Path]:
        """The store's read-only tree of each wheel (canonical name -> tree), unpacking what is not there yet."""
        trees: dict[str, Path] = {}
        for wheel in wheels:
            name, _, _, _ = parse_wheel_filename(wheel.name)
            try:
                trees[str(name)] = self.store.tree(wheel)
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
