"""The one Settings object, read from the environment once at start-up and passed on explicitly."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigError

T = TypeVar("T")

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
    # Limits applied to every sandbox and request.
    max_memory_per_session: int = 512 * 1024 * 1024
    max_execution_time: int = 30_000
    max_cpu_percent: int = 100
    pids_limit: int = 64
    output_limit_bytes: int = 1024 * 1024
    max_code_bytes: int = 1024 * 1024
    workspace_size_bytes: int = 100 * 1024 * 1024
    tmp_size_bytes: int = 64 * 1024 * 1024
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
    wheel_cache_dir: str = "/var/cache/penny/wheels"
    site_root: str = "/var/lib/penny/site"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its upper-case environment variable; raise ConfigError naming a bad one."""
        env = os.environ if environ is None else environ
        parsers: dict[str, Callable[[str, str], Any]] = {
            "sandbox_port": lambda n, r: _int(n, r, minimum=1),
            "redis_url": _str,
            "docker_image": _str,
            "enable_networking": _bool,
            "max_memory_per_session": lambda n, r: _int(n, r, minimum=64 * 1024 * 1024),
            "max_execution_time": lambda n, r: _int(n, r, minimum=100),
            "max_cpu_percent": lambda n, r: _int(n, r, minimum=1),
            "pids_limit": lambda n, r: _int(n, r, minimum=8),
            "output_limit_bytes": lambda n, r: _int(n, r, minimum=1024),
            "max_code_bytes": lambda n, r: _int(n, r, minimum=1),
            "workspace_size_bytes": lambda n, r: _int(n, r, minimum=1024 * 1024),
            "tmp_size_bytes": lambda n, r: _int(n, r, minimum=1024 * 1024),
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
            "wheel_cache_dir": _str,
            "site_root": _str,
        }
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(field.name.upper())
            if raw is not None:
                values[field.name] = parsers[field.name](field.name.upper(), raw)
        settings = cls(**values)
        if settings.enable_networking:
            # Until sandboxes get a dedicated egress-only network (no host, no private ranges, no metadata
            # addresses), giving them any network would be a hole: refuse rather than fall back.
            raise ConfigError("ENABLE_NETWORKING=true is not supported yet: sandboxes run with no network")
        if not settings.worker_name:
            settings = cls(**{**values, "worker_name": socket.gethostname()})
        return settings

    @property
    def job_timeout_default_ms(self) -> int:
        """The timeout a request gets when it names none: the maximum."""
        return self.max_execution_time
