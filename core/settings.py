"""The one Settings object, read from the environment once at start-up and passed on explicitly."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigError
from core.policies import ResourcePolicy

T = TypeVar("T")

_TENANT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _int(name: str, raw: str, *, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _str(name: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{name} must not be empty")
    return raw.strip()


def _api_keys(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """`key:tenant,key:tenant` -> ((key, tenant), ...); a key may appear once."""
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key, sep, tenant = item.rpartition(":")
        if not sep or len(key) < 16 or not _TENANT_NAME.fullmatch(tenant):
            raise ConfigError(f"{name} must be a comma-separated list of key:tenant (keys of at least 16 "
                              f"characters, tenant names of [A-Za-z0-9_.-]); entry {len(pairs) + 1} is not")
        if key in dict(pairs):
            raise ConfigError(f"{name}: entry {len(pairs) + 1} repeats a key")
        pairs.append((key, tenant))
    return tuple(pairs)


def _admin_keys(name: str, raw: str) -> tuple[str, ...]:
    admin = tuple(part.strip() for part in raw.split(",") if part.strip())
    if any(len(key) < 16 for key in admin):
        raise ConfigError(f"{name} must be a comma-separated list of keys of at least 16 characters")
    return admin


def _quotas(name: str, raw: str) -> tuple[tuple[str, int, int], ...]:
    """`tenant:max_active_jobs:max_sessions,...` -> ((tenant, jobs, sessions), ...)."""
    quotas: list[tuple[str, int, int]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        pieces = item.split(":")
        if len(pieces) != 3 or not _TENANT_NAME.fullmatch(pieces[0]):
            raise ConfigError(f"{name} must be a comma-separated list of tenant:max_active_jobs:max_sessions, "
                              f"got {item!r}")
        quotas.append((pieces[0], _int(name, pieces[1], minimum=1), _int(name, pieces[2], minimum=0)))
    return tuple(quotas)


def _interface_name(name: str, raw: str) -> str:
    value = raw.strip()
    if not _INTERFACE_NAME.fullmatch(value):
        raise ConfigError(f"{name} must be 1 to 15 characters of [A-Za-z0-9_.-] starting with a letter or digit "
                          f"(it also names a network interface), got {raw!r}")
    return value


def _ipv4_subnet(name: str, raw: str) -> str:
    try:
        subnet = ipaddress.IPv4Network(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an IPv4 subnet such as 172.31.255.0/24, got {raw!r}") from None
    if not subnet.is_private or subnet.prefixlen > 29:
        raise ConfigError(f"{name} must be a private IPv4 subnet of at least 8 addresses, got {raw!r}")
    return str(subnet)


def _modules(name: str, raw: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for module in names:
        if not all(piece.isidentifier() for piece in module.split(".")):
            raise ConfigError(f"{name} must be a comma-separated list of module names, got {module!r}")
    return names


@dataclass(frozen=True)
class Settings:
    """Every tunable of the service; field names are the environment variables in lower case."""

    sandbox_port: int = 3003
    redis_url: str = "redis://localhost:6379/0"
    docker_image: str = "penny-sandbox:latest"
    enable_networking: bool = False
    # ENABLE_NETWORKING=true: the egress-only Docker network the sandboxes join (workers.egress). Its name
    # also names the host's bridge interface, hence at most 15 characters.
    egress_network: str = "penny-egress"
    egress_subnet: str = "172.31.255.0/24"
    # Limits applied to every sandbox and request.
    max_memory_per_session: int = 512 * 1024 * 1024
    max_execution_time: int = 30_000
    max_cpu_percent: int = 100
    pids_limit: int = 64
    output_limit_bytes: int = 1024 * 1024
    max_code_bytes: int = 1024 * 1024
    workspace_size_bytes: int = 100 * 1024 * 1024
    tmp_size_bytes: int = 64 * 1024 * 1024
    # Files (inodes: files, directories, links) on each of /workspace and /tmp. Bounds what the reset after
    # a stateless job must remove, and the kernel memory a job's empty files take.
    max_files: int = 65_536
    max_file_size_bytes: int = 10 * 1024 * 1024
    max_plot_bytes: int = 5 * 1024 * 1024
    max_plots_bytes: int = 20 * 1024 * 1024
    # Cluster behaviour.
    pool_size: int = 4
    api_workers: int = 2
    max_queue_depth: int = 500
    job_retention_seconds: int = 3600
    heartbeat_ttl_seconds: int = 5
    container_max_jobs: int = 500
    worker_name: str = ""
    worker_metrics_port: int = 9808
    preload_modules: tuple[str, ...] = ("numpy", "pandas", "matplotlib.pyplot")
    # Sessions: idle sessions are light (no preloads, so an idle one costs little memory).
    session_idle_timeout: int = 30 * 60 * 1000
    max_sessions_per_host: int = 50
    session_pool_size: int = 2
    session_preload_modules: tuple[str, ...] = ()
    log_level: str = "INFO"
    # Packages: the policies directory, the worker host's wheel cache, and where each sandbox's installed
    # packages live on the host (mounted read-only in the sandbox).
    policy_dir: str = str(Path(__file__).resolve().parent.parent / "policies")
    # The sandboxes' Docker seccomp profile (Docker's default narrowed; see deploy/seccomp/README.md).
    seccomp_profile_path: str = str(Path(__file__).resolve().parent.parent / "deploy/seccomp/penny-sandbox.json")
    wheel_cache_dir: str = "/var/cache/penny/wheels"
    site_root: str = "/var/lib/penny/site"
    # Tenants: PENNY_API_KEYS is `key:tenant,...` (none: the API runs open, one tenant "default");
    # PENNY_ADMIN_KEYS may read the audit trail. Quotas per tenant, with per-tenant overrides.
    penny_api_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    penny_admin_keys: tuple[str, ...] = field(default=(), repr=False)
    tenant_max_active_jobs: int = 100
    tenant_max_sessions: int = 20
    tenant_quotas: tuple[tuple[str, int, int], ...] = ()
    # Audit trail: a bounded Redis Stream, archived by the API to an append-only JSON-lines file.
    audit_log_path: str = "/var/log/penny/audit.jsonl"
    audit_stream_maxlen: int = 100_000
    audit_include_code: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its upper-case environment variable; raise ConfigError naming a bad one."""
        env = os.environ if environ is None else environ
        parsers: dict[str, Callable[[str, str], Any]] = {
            "sandbox_port": lambda n, r: _int(n, r, minimum=1),
            "redis_url": _str,
            "docker_image": _str,
            "enable_networking": _bool,
            "egress_network": _interface_name,
            "egress_subnet": _ipv4_subnet,
            "max_memory_per_session": lambda n, r: _int(n, r, minimum=64 * 1024 * 1024),
            "max_execution_time": lambda n, r: _int(n, r, minimum=100),
            "max_cpu_percent": lambda n, r: _int(n, r, minimum=1),
            "pids_limit": lambda n, r: _int(n, r, minimum=8),
            "output_limit_bytes": lambda n, r: _int(n, r, minimum=1024),
            "max_code_bytes": lambda n, r: _int(n, r, minimum=1),
            "workspace_size_bytes": lambda n, r: _int(n, r, minimum=1024 * 1024),
            "tmp_size_bytes": lambda n, r: _int(n, r, minimum=1024 * 1024),
            "max_files": lambda n, r: _int(n, r, minimum=1024),
            "max_file_size_bytes": lambda n, r: _int(n, r, minimum=1024),
            "max_plot_bytes": lambda n, r: _int(n, r, minimum=1024),
            "max_plots_bytes": lambda n, r: _int(n, r, minimum=1024),
            "pool_size": lambda n, r: _int(n, r, minimum=1),
            "api_workers": lambda n, r: _int(n, r, minimum=1),
            "max_queue_depth": lambda n, r: _int(n, r, minimum=1),
            "job_retention_seconds": lambda n, r: _int(n, r, minimum=10),
            "heartbeat_ttl_seconds": lambda n, r: _int(n, r, minimum=2),
            "container_max_jobs": lambda n, r: _int(n, r, minimum=1),
            "worker_name": _str,
            "worker_metrics_port": lambda n, r: _int(n, r, minimum=0),
            "preload_modules": _modules,
            "session_idle_timeout": lambda n, r: _int(n, r, minimum=1000),
            "max_sessions_per_host": lambda n, r: _int(n, r, minimum=0),
            "session_pool_size": lambda n, r: _int(n, r, minimum=1),
            "session_preload_modules": _modules,
            "log_level": lambda n, r: _str(n, r).upper(),
            "policy_dir": _str,
            "seccomp_profile_path": _str,
            "wheel_cache_dir": _str,
            "site_root": _str,
            "penny_api_keys": _api_keys,
            "penny_admin_keys": _admin_keys,
            "tenant_max_active_jobs": lambda n, r: _int(n, r, minimum=1),
            "tenant_max_sessions": lambda n, r: _int(n, r, minimum=0),
            "tenant_quotas": _quotas,
            "audit_log_path": _str,
            "audit_stream_maxlen": lambda n, r: _int(n, r, minimum=100),
            "audit_include_code": _bool,
        }
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(spec.name.upper())
            if raw is not None:
                values[spec.name] = parsers[spec.name](spec.name.upper(), raw)
        resources = ResourcePolicy.load(Path(values.get("policy_dir", cls.policy_dir)))
        values = {**resources.as_settings(), **values}  # an environment variable wins over the file
        settings = cls(**values)
        if not settings.worker_name:
            settings = cls(**{**values, "worker_name": socket.gethostname()})
        return settings

    @property
    def job_timeout_default_ms(self) -> int:
        """The timeout a request gets when it names none: the maximum."""
        return self.max_execution_time
