"""The package policy (policies/packages.json): loaded and validated at start-up, then checked per request.

A bad file stops start-up with a ConfigError naming the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from core.errors import ConfigError

DEFAULT_POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"
CATEGORIES = ("data-science", "visualization", "ml", "text", "web", "utilities")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a JSON object")
    return raw


def _names(path: Path, raw: dict[str, Any], dotted_key: str) -> frozenset[str]:
    value: Any = raw
    for part in dotted_key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigError(f"{path}: key '{dotted_key}' must be a list of non-empty strings")
    return frozenset(value)


@dataclass(frozen=True)
class ImportPolicy:
    """policies/imports.json: what user code may import (`allowed`: an allowlist, submodules included;
    `blocked` refuses inside an allowed package too) and which builtins it may not use.

    A policy that blocks nothing (no module, no builtin, and no blocked path in filesystem.json) switches
    the second layer off, the allowlist included (see `enforced`).
    """

    allowed: frozenset[str]
    blocked: frozenset[str]
    allowed_builtins: frozenset[str]
    blocked_builtins: frozenset[str]

    @classmethod
    def load(cls, policy_dir: Path) -> ImportPolicy:
        path = policy_dir / "imports.json"
        raw = _read_json(path)
        policy = cls(_names(path, raw, "allowed"), _names(path, raw, "blocked"),
                     _names(path, raw, "restricted.builtins.allowed"), _names(path, raw, "restricted.builtins.blocked"))
        both = policy.allowed & policy.blocked
        if both:
            raise ConfigError(f"{path}: key 'blocked' repeats modules of 'allowed': {', '.join(sorted(both))}")
        return policy

    @property
    def blocks_anything(self) -> bool:
        return bool(self.blocked or self.blocked_builtins)

    def is_blocked(self, module: str) -> bool:
        """A module is blocked if it, or a package it is inside, is listed in `blocked`."""
        parts = module.split(".")
        return any(".".join(parts[:i]) in self.blocked for i in range(1, len(parts) + 1))

    def is_allowed(self, module: str) -> bool:
        """User code may import module: it or a package it is inside is in `allowed`, and none is blocked
        (an empty `allowed` list allows everything not blocked)."""
        parts = module.split(".")
        prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(prefix in self.blocked for prefix in prefixes):
            return False
        return not self.allowed or any(prefix in self.allowed for prefix in prefixes)


@dataclass(frozen=True)
class FilesystemPolicy:
    """policies/filesystem.json: writable, read-only and blocked paths."""

    allowed_paths: tuple[str, ...]
    blocked_paths: tuple[str, ...]
    read_only_paths: tuple[str, ...]

    @classmethod
    def load(cls, policy_dir: Path) -> FilesystemPolicy:
        path = policy_dir / "filesystem.json"
        raw = _read_json(path)
        keys = ("allowedPaths", "blockedPaths", "readOnlyPaths")
        values = {key: tuple(sorted(_names(path, raw, key))) for key in keys}
        for key, paths in values.items():
            for entry in paths:
                if not entry.startswith("/"):
                    raise ConfigError(f"{path}: key '{key}' must hold absolute paths, got {entry!r}")
        return cls(values["allowedPaths"], values["blockedPaths"], values["readOnlyPaths"])

    def is_writable(self, target: str) -> bool:
        return any(target == root or target.startswith(root.rstrip("/") + "/") for root in self.allowed_paths)


def runtime_policy_json(imports: ImportPolicy, filesystem: FilesystemPolicy) -> str:
    """The policy the sandbox runtime enforces on user code (sandbox_runtime.guard reads PENNY_POLICY)."""
    return json.dumps({
        "blockedModules": sorted(imports.blocked),
        "blockedBuiltins": sorted(imports.blocked_builtins),
        "blockedPaths": list(filesystem.blocked_paths),
        "writablePaths": list(filesystem.allowed_paths),
        "allowedModules": sorted(imports.allowed),
    }, separators=(",", ":"))


@dataclass(frozen=True)
class ResourcePolicy:
    """policies/resources.json: the limits of every sandbox (bytes, percent, milliseconds, file counts).

    Mapped onto the container (memory and swap, CPU quota, /workspace and /tmp sizes and file counts,
    RLIMIT_FSIZE) and onto request validation (the largest timeout). An environment variable of the same
    limit overrides the file.
    """

    max_memory_per_session: int
    max_cpu_percent: int
    max_execution_time: int
    max_file_size_bytes: int
    workspace_size_bytes: int
    tmp_size_bytes: int
    max_files: int

    # (JSON path, Settings field, minimum)
    FIELDS = (
        ("memory.maxMemoryPerSession", "max_memory_per_session", 64 * 1024 * 1024),
        ("cpu.maxCpuPercentage", "max_cpu_percent", 1),
        ("cpu.maxExecutionTime", "max_execution_time", 100),
        ("storage.maxFileSize", "max_file_size_bytes", 1024),
        ("storage.maxTotalStorage", "workspace_size_bytes", 1024 * 1024),
        ("storage.maxTmpStorage", "tmp_size_bytes", 1024 * 1024),
        ("storage.maxFiles", "max_files", 1024),
    )

    @classmethod
    def load(cls, policy_dir: Path) -> ResourcePolicy:
        path = policy_dir / "resources.json"
        raw = _read_json(path)
        values: dict[str, int] = {}
        for dotted, name, minimum in cls.FIELDS:
            value: Any = raw
            for part in dotted.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{path}: key '{dotted}' must be an integer >= {minimum}, got {value!r}")
            values[name] = value
        if values["max_file_size_bytes"] > values["workspace_size_bytes"]:
            raise ConfigError(f"{path}: key 'storage.maxFileSize' must not exceed 'storage.maxTotalStorage'")
        return cls(**values)

    def as_settings(self) -> dict[str, int]:
        """Settings field -> value."""
        return {name: getattr(self, name) for _, name, _ in self.FIELDS}


@dataclass(frozen=True)
class AllowedPackage:
    """One allowlist entry."""

    name: str
    category: str
    versions: SpecifierSet
    description: str


@dataclass(frozen=True)
class PackagePolicy:
    """The allowlist, by canonical name."""

    packages: dict[str, AllowedPackage]

    @classmethod
    def load(cls, policy_dir: Path) -> PackagePolicy:
        """Read and validate policy_dir/packages.json."""
        path = policy_dir / "packages.json"
        raw = _read_json(path)
        entries = raw.get("packages")
        if not isinstance(entries, list):
            raise ConfigError(f"{path}: key 'packages' must be a list")
        packages: dict[str, AllowedPackage] = {}
        for index, entry in enumerate(entries):
            where = f"{path}: packages[{index}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} must be an object")
            for key in ("name", "category", "versions", "description"):
                if not isinstance(entry.get(key), str) or not entry[key].strip():
                    raise ConfigError(f"{where}.{key} must be a non-empty string")
            if entry["category"] not in CATEGORIES:
                raise ConfigError(f"{where}.category must be one of {', '.join(CATEGORIES)}, got {entry['category']!r}")
            try:
                versions = SpecifierSet(entry["versions"])
            except InvalidSpecifier:
                raise ConfigError(f"{where}.versions is not a version range: {entry['versions']!r}") from None
            name = canonicalize_name(entry["name"])
            if name in packages:
                raise ConfigError(f"{where}.name {entry['name']!r} is listed twice")
            packages[name] = AllowedPackage(entry["name"], entry["category"], versions, entry["description"])
        return cls(packages)

    def get(self, name: str) -> AllowedPackage | None:
        return self.packages.get(canonicalize_name(name))

    def check(self, spec: str) -> tuple[Requirement | None, str | None]:
        """Parse one requested package: (requirement, None) if it may be installed, else (maybe None, reason)."""
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            return None, f"{spec!r} is not a package requirement (e.g. 'tabulate' or 'tabulate==0.9.0')"
        if requirement.url or requirement.marker or requirement.extras:
            return requirement, "URLs, markers and extras are not allowed"
        allowed = self.get(requirement.name)
        if allowed is None:
            return requirement, f"{requirement.name} is not in the package allowlist"
        pinned = [s.version for s in requirement.specifier if s.operator in ("==", "===")]
        for version in pinned:
            if not allowed.versions.contains(version, prereleases=True):
                return requirement, f"{requirement.name} {version} is outside the allowed range {allowed.versions}"
        return requirement, None

    def listing(self, *, search: str | None, category: str | None) -> list[dict[str, Any]]:
        """Allowlist entries matching search (in name or description) and category, by name."""
        needle = (search or "").lower()
        return [
            {"name": p.name, "category": p.category, "allowedVersions": str(p.versions), "description": p.description}
            for p in sorted(self.packages.values(), key=lambda p: p.name.lower())
            if (not category or p.category == category)
            and (not needle or needle in p.name.lower() or needle in p.description.lower())
        ]
