"""PackageInstaller: allowlisted wheels fetched on the worker host, installed for one sandbox.

The sandbox never gets a network: this host resolves the requested packages (each dependency checked
against the allowlist before it is fetched), downloads binary wheels only into a shared wheel cache,
installs each wheel once (pip --no-index) into that cache, and hard-links it into the sandbox's own site
directory, which the sandbox sees read-only at /opt/penny/site. A cached wheel costs no download and no
pip run.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from core.policies import PackagePolicy

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 300
_SUPPORTED_TAGS = set(sys_tags())  # the sandbox runs the same CPython minor version and glibc as this host


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

    def __init__(self, policy: PackagePolicy, cache_dir: Path) -> None:
        self._policy = policy
        self._cache = cache_dir
        self._cache.mkdir(parents=True, exist_ok=True)

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
        found = self._cached(name, specifier)
        if found is None:
            self._download(name, specifier)
            found = self._cached(name, specifier)
        if found is None:
            raise ResolutionError(f"no binary wheel of {name}{specifier} for this sandbox's Python")
        return found

    def _cached(self, name: str, specifier: SpecifierSet) -> tuple[Version, Path] | None:
        best: tuple[Version, Path] | None = None
        for path in self._cache.glob("*.whl"):
            try:
                wheel_name, version, _, tags = parse_wheel_filename(path.name)
            except ValueError:
                continue
            if wheel_name != name or not specifier.contains(version) or not tags & _SUPPORTED_TAGS:
                continue
            if best is None or version > best[0]:
                best = (version, path)
        return best

    def _download(self, name: str, specifier: SpecifierSet) -> None:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                   "--only-binary=:all:", "--dest", str(self._cache), f"{name}{specifier}"]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        if completed.returncode != 0:
            log.warning("pip download %s%s failed: %s", name, specifier, completed.stderr.strip()[-500:])

    def install(self, wheels: list[Path], site_dir: Path) -> None:
        """Install the wheels (dependencies already resolved) into site_dir, from the cache, with no index.

        Each wheel is installed once per host (pip --no-index --target, byte-compiled) into the cache's
        `installed/` tree; a sandbox then gets hard links to those files: no pip run, no copying, and a
        file the read-only sandbox cannot change.
        """
        for wheel in wheels:
            tree = self._installed_tree(wheel)
            shutil.copytree(tree, site_dir, copy_function=_link_or_copy, dirs_exist_ok=True)
        site_dir.chmod(0o755)  # readable by the sandbox's user (copytree copied the tree root's mode)

    def _installed_tree(self, wheel: Path) -> Path:
        tree = self._cache / "installed" / wheel.stem
        if tree.is_dir():
            return tree
        tree.parent.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{wheel.stem}-", dir=tree.parent))
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
                   "--no-deps", "--target", str(staging), str(wheel)]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        if completed.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise ResolutionError(f"installing {wheel.name} failed: {completed.stderr.strip()[-500:]}")
        staging.chmod(0o755)  # mkdtemp made it private; the sandbox's user must read what it holds
        try:
            staging.rename(tree)  # atomic: a concurrent install of the same wheel keeps either tree
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        return tree


def _link_or_copy(source: str, target: str) -> None:
    """Put source at target: a hard link (or a copy across file systems), replacing what is there (a
    forced reinstall finds the same files already linked)."""
    try:
        if os.path.samefile(source, target):
            return
        os.unlink(target)
    except FileNotFoundError:
        pass
    try:
        os.link(source, target)
    except OSError:  # another file system: copy instead
        shutil.copy2(source, target)


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
