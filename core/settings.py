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
from core.isolation import TIER_OF_RUNTIME, Tier
from core.policies import ResourcePolicy
from core.redis_client import check_url

T = TypeVar("T")

_TENANT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
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


def _api_key_entry(name: str, where: str, item: str) -> tuple[str, str]:
    """One `key:tenant`; the message names where it is (never the key)."""
    key, sep, tenant = item.rpartition(":")
    if not sep or len(key) < 16 or not _TENANT_NAME.fullmatch(tenant):
        raise ConfigError(f"{name} must hold key:tenant entries (keys of at least 16 characters, tenant names "
                          f"of [A-Za-z0-9_.-]); {where} is not")
    return key, tenant


def _unique_keys(name: str, keys: list[str]) -> None:
    if len(set(keys)) != len(keys):
        raise ConfigError(f"{name}: a key appears more than once")


def _api_keys(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """`key:tenant,key:tenant` -> ((key, tenant), ...); a key may appear once."""
    items = [part.strip() for part in raw.split(",") if part.strip()]
    pairs = [_api_key_entry(name, f"entry {index + 1}", item) for index, item in enumerate(items)]
    _unique_keys(name, [key for key, _ in pairs])
    return tuple(pairs)


def _admin_key(name: str, where: str, key: str) -> str:
    if len(key) < 16:
        raise ConfigError(f"{name} must hold keys of at least 16 characters; {where} is not")
    return key


def _admin_keys(name: str, raw: str) -> tuple[str, ...]:
    items = [part.strip() for part in raw.split(",") if part.strip()]
    admin = tuple(_admin_key(name, f"entry {index + 1}", key) for index, key in enumerate(items))
    _unique_keys(name, list(admin))
    return admin


def _key_file_lines(name: str, path: str) -> list[tuple[str, str]]:
    """(where, line) for each line of a key file that is neither blank nor a comment (`#` first)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM is no part of the first key
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: {path} is not UTF-8 text") from None
    lines = [(f"{path} line {number}", line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    return [(where, line) for where, line in lines if line and not line.startswith("#")]


def _with_key_files(values: dict[str, Any]) -> dict[str, Any]:
    """Add the keys of PENNY_API_KEYS_FILE (`key:tenant` a line) and PENNY_ADMIN_KEYS_FILE (a key a line) to
    those of PENNY_API_KEYS and PENNY_ADMIN_KEYS (Docker and Kubernetes secrets are files)."""
    values = dict(values)
    if values.get("penny_api_keys_file"):
        name = "PENNY_API_KEYS_FILE"
        pairs = [_api_key_entry(name, where, line)
                 for where, line in _key_file_lines(name, values["penny_api_keys_file"])]
        values["penny_api_keys"] = (*values.get("penny_api_keys", ()), *pairs)
        _unique_keys("PENNY_API_KEYS and PENNY_API_KEYS_FILE", [key for key, _ in values["penny_api_keys"]])
    if values.get("penny_admin_keys_file"):
        name = "PENNY_ADMIN_KEYS_FILE"
        admin = [_admin_key(name, where, line)
                 for where, line in _key_file_lines(name, values["penny_admin_keys_file"])]
        values["penny_admin_keys"] = (*values.get("penny_admin_keys", ()), *admin)
        _unique_keys("PENNY_ADMIN_KEYS and PENNY_ADMIN_KEYS_FILE", list(values["penny_admin_keys"]))
    return values


def _rate(name: str, raw: str) -> str:
    """A rate limit string such as `60/second` or `10/second;300/minute` (checked with the limits package)."""
    from limits import parse_many

    value = raw.strip()
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as 60/second or 10/second;300/minute, got {raw!r}") from None
    return value


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


def _runtime(name: str, raw: str) -> str:
    """A Docker runtime a tier maps to: `runc` or `runsc` (core.isolation)."""
    value = raw.strip()
    if value not in TIER_OF_RUNTIME:
        raise ConfigError(f"{name} must be one of {', '.join(sorted(TIER_OF_RUNTIME))}, got {raw!r}")
    return value


def _isolation(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    """`tenant:tier,...` (tiers: runc, gvisor) -> ((tenant, tier), ...); a tenant named twice is refused."""
    entries: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        tenant, sep, tier = item.partition(":")
        if not sep or not _TENANT_NAME.fullmatch(tenant) or tier not in {t.value for t in Tier}:
            raise ConfigError(f"{name} must be a comma-separated list of tenant:tier with tiers "
                              f"{', '.join(t.value for t in Tier)}, got {item!r}")
        if any(tenant == seen for seen, _ in entries):
            raise ConfigError(f"{name} names tenant {tenant!r} twice")
        entries.append((tenant, tier))
    return tuple(entries)


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


def _host(name: str, raw: str) -> str:
    """An address to listen on: an IPv4/IPv6 literal (brackets optional) or a host name."""
    value = raw.strip()
    try:
        return str(ipaddress.ip_address(value.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(value):
        raise ConfigError(f"{name} must be an IP address or a host name such as 127.0.0.1 or 0.0.0.0, got {raw!r}")
    return value


def _basic_auth(name: str, raw: str) -> tuple[str, ...]:
    """`user:password,...` (Flower's --basic-auth) -> ("user:password", ...); empty: no credentials."""
    credentials = tuple(part.strip() for part in raw.split(",") if part.strip())
    for index, credential in enumerate(credentials):
        user, sep, password = credential.partition(":")
        if not sep or not user or len(password) < 8:
            raise ConfigError(f"{name} must be a comma-separated list of user:password (passwords of at least 8 "
                              f"characters); entry {index + 1} is not")
    return credentials


def is_loopback(host: str) -> bool:
    """True when an address to listen on (a literal or "localhost") is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False  # a host name may resolve to anything


def _readable_file(name: str, raw: str) -> str:
    """A path to a file this process can read; empty stays empty (unset)."""
    value = raw.strip()
    if value and not os.access(value, os.R_OK):
        raise ConfigError(f"{name} must name a readable file, got {raw!r}")
    return value


def _origins(name: str, raw: str) -> tuple[str, ...]:
    """`https://a.example,http://localhost:5173` -> origins (scheme://host[:port], no path); `*` is refused."""
    origins = tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise ConfigError(f"{name} must be a comma-separated list of origins such as https://app.example.com "
                              f"or http://localhost:5173 (no path, no wildcard), got {origin!r}")
    return origins


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
    # Where the API (SANDBOX_HOST) and `make run`'s Flower (FLOWER_HOST) listen: this machine only by default.
    # Another address needs PENNY_API_KEYS (the API) or FLOWER_BASIC_AUTH (Flower), or PENNY_ALLOW_OPEN=true
    # to serve them without authentication on purpose (check_api_binding, check_flower_binding).
    sandbox_host: str = "127.0.0.1"
    flower_host: str = "127.0.0.1"
    flower_basic_auth: tuple[str, ...] = field(default=(), repr=False)
    penny_allow_open: bool = False
    # redis://[user:password@]host:port/db, or rediss:// for TLS (core.redis_client). Not in repr: it may hold
    # a password. REDIS_TLS_CA_FILE: the CA that signed Redis's certificate (empty: the system's CAs);
    # REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE: a client certificate, for a Redis with tls-auth-clients.
    redis_url: str = field(default="redis://localhost:6379/0", repr=False)
    redis_tls_ca_file: str = ""
    redis_tls_cert_file: str = ""
    redis_tls_key_file: str = ""
    docker_image: str = "penny-sandbox:latest"
    # Isolation tiers (core.isolation): the Docker runtime of every tenant without an entry (`runc`, or `runsc`
    # for gVisor), and per-tenant tiers `tenant:gvisor,...`. A worker serves every tier named here and refuses to
    # start when Docker lacks a tier's runtime.
    sandbox_runtime: str = "runc"
    tenant_isolation: tuple[tuple[str, str], ...] = ()
    # The gVisor tier's warm pools per host (0: POOL_SIZE and SESSION_POOL_SIZE, as every tier): a gVisor
    # sandbox is slower to start and fork, so a cluster with few untrusted tenants keeps fewer of them warm.
    gvisor_pool_size: int = 0
    gvisor_session_pool_size: int = 0
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
    # The session pool follows demand (the busiest 5 s of creates in the last 2 minutes) up to this size.
    session_pool_max_size: int = 24
    session_preload_modules: tuple[str, ...] = ()
    log_level: str = "INFO"
    # Packages: the policies directory, the worker host's wheel cache, and where each sandbox's installed
    # packages live on the host (mounted read-only in the sandbox).
    policy_dir: str = str(Path(__file__).resolve().parent.parent / "policies")
    # The sandboxes' Docker seccomp profile (Docker's default narrowed; see deploy/seccomp/README.md).
    seccomp_profile_path: str = str(Path(__file__).resolve().parent.parent / "deploy/seccomp/penny-sandbox.json")
    wheel_cache_dir: str = "/var/cache/penny/wheels"
    # One package install's whole time (look-ups, downloads, unpacking); below the API's wait for it
    # (api.packages.INSTALL_TIMEOUT_MS) and the reaper's allowance (core.reaper.INSTALL_ALLOWANCE_MS).
    package_install_timeout_ms: int = 240_000
    site_root: str = "/var/lib/penny/site"
    # Tenants: PENNY_API_KEYS is `key:tenant,...` (none: the API runs open, one tenant "default");
    # PENNY_ADMIN_KEYS may read the audit trail. Quotas per tenant, with per-tenant overrides.
    penny_api_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    penny_admin_keys: tuple[str, ...] = field(default=(), repr=False)
    # The same as files (Docker and Kubernetes secrets): `key:tenant` / a key per line, `#` comment lines; their
    # keys are added to those of the variables.
    penny_api_keys_file: str = ""
    penny_admin_keys_file: str = ""
    tenant_max_active_jobs: int = 100
    tenant_max_sessions: int = 20
    tenant_quotas: tuple[tuple[str, int, int], ...] = ()
    # Session file bytes a tenant may hold in Redis at once (uploads not yet written, downloads not yet sent):
    # at least one file of MAX_FILE_SIZE_BYTES.
    tenant_max_transfer_bytes: int = 64 * 1024 * 1024
    # The bytes a tenant's jobs may hold in Redis at once (requests, events, results, each until
    # JOB_RETENTION_SECONDS after it was written); past it new jobs answer 429 until old ones expire.
    tenant_max_stored_bytes: int = 1024 * 1024 * 1024
    # Audit trail: a bounded Redis Stream, archived by the API to an append-only JSON-lines file.
    audit_log_path: str = "/var/log/penny/audit.jsonl"
    audit_stream_maxlen: int = 100_000
    audit_include_code: bool = False
    # Request rates per tenant (api.limits), counted in Redis across API processes: limits strings such as
    # "60/second" or "10/second;300/minute". RATE_LIMIT_EXECUTE: execute, execute/stream, jobs, packages/install
    # (a session's executes too); RATE_LIMIT_SESSIONS: creating sessions. RATE_LIMIT_ENABLED=false lifts them.
    rate_limit_enabled: bool = True
    rate_limit_execute: str = "200/second"
    rate_limit_sessions: str = "20/second"
    rate_limit_validate: str = "200/second"
    # Browser pages on these origins (`https://app.example.com,...`) may call the API (api.cors); empty: none.
    cors_origins: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from its upper-case environment variable; raise ConfigError naming a bad one."""
        env = os.environ if environ is None else environ
        parsers: dict[str, Callable[[str, str], Any]] = {
            "sandbox_port": lambda n, r: _int(n, r, minimum=1),
            "sandbox_host": _host,
            "flower_host": _host,
            "flower_basic_auth": _basic_auth,
            "penny_allow_open": _bool,
            "redis_url": lambda n, r: check_url(n, _str(n, r)),
            "redis_tls_ca_file": _readable_file,
            "redis_tls_cert_file": _readable_file,
            "redis_tls_key_file": _readable_file,
            "docker_image": _str,
            "sandbox_runtime": _runtime,
            "tenant_isolation": _isolation,
            "gvisor_pool_size": lambda n, r: _int(n, r, minimum=1),
            "gvisor_session_pool_size": lambda n, r: _int(n, r, minimum=1),
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
            "session_pool_max_size": lambda n, r: _int(n, r, minimum=1),
            "session_preload_modules": _modules,
            "log_level": lambda n, r: _str(n, r).upper(),
            "policy_dir": _str,
            "seccomp_profile_path": _str,
            "wheel_cache_dir": _str,
            "package_install_timeout_ms": lambda n, r: _int(n, r, minimum=1000),
            "site_root": _str,
            "penny_api_keys": _api_keys,
            "penny_admin_keys": _admin_keys,
            "penny_api_keys_file": _str,
            "penny_admin_keys_file": _str,
            "tenant_max_active_jobs": lambda n, r: _int(n, r, minimum=1),
            "tenant_max_sessions": lambda n, r: _int(n, r, minimum=0),
            "tenant_quotas": _quotas,
            "tenant_max_transfer_bytes": lambda n, r: _int(n, r, minimum=1024 * 1024),
            "tenant_max_stored_bytes": lambda n, r: _int(n, r, minimum=16 * 1024 * 1024),
            "audit_log_path": _str,
            "audit_stream_maxlen": lambda n, r: _int(n, r, minimum=100),
            "audit_include_code": _bool,
            "rate_limit_enabled": _bool,
            "rate_limit_execute": _rate,
            "rate_limit_sessions": _rate,
            "rate_limit_validate": _rate,
            "cors_origins": _origins,
        }
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(spec.name.upper())
            if raw is not None:
                values[spec.name] = parsers[spec.name](spec.name.upper(), raw)
        values = _with_key_files(values)
        resources = ResourcePolicy.load(Path(values.get("policy_dir", cls.policy_dir)))
        values = {**resources.as_settings(), **values}  # an environment variable wins over the file
        settings = cls(**values)
        settings._check_redis_tls()
        if settings.tenant_max_transfer_bytes < settings.max_file_size_bytes:
            raise ConfigError(f"TENANT_MAX_TRANSFER_BYTES ({settings.tenant_max_transfer_bytes}) must be at least "
                              f"MAX_FILE_SIZE_BYTES ({settings.max_file_size_bytes}): one file must fit")
        if not settings.worker_name:
            settings = cls(**{**values, "worker_name": socket.gethostname()})
        return settings

    @property
    def default_tier(self) -> Tier:
        """The tier of a tenant TENANT_ISOLATION does not name (SANDBOX_RUNTIME's)."""
        return TIER_OF_RUNTIME[self.sandbox_runtime]

    def tier_of(self, tenant: str) -> Tier:
        """The isolation tier tenant's jobs and sessions run in."""
        for name, tier in self.tenant_isolation:
            if name == tenant:
                return Tier(tier)
        return self.default_tier

    @property
    def tiers(self) -> tuple[Tier, ...]:
        """Every tier these settings name (the default first): the tiers each worker host serves."""
        named = [self.default_tier, *(self.tier_of(tenant) for tenant, _ in self.tenant_isolation)]
        return tuple(dict.fromkeys(named))

    def pool_size_of(self, tier: Tier) -> int:
        """Warm stateless sandboxes per host of tier (its job concurrency)."""
        return self.gvisor_pool_size if tier is Tier.GVISOR and self.gvisor_pool_size else self.pool_size

    def session_pool_size_of(self, tier: Tier) -> int:
        """The floor of tier's demand-following session pool per host."""
        if tier is Tier.GVISOR and self.gvisor_session_pool_size:
            return self.gvisor_session_pool_size
        return self.session_pool_size

    @property
    def api_open(self) -> bool:
        """No tenant key is configured: the API serves anyone who reaches it, as tenant "default"."""
        return not self.penny_api_keys

    def check_api_binding(self) -> None:
        """Refuse (ConfigError) to serve an open API beyond this machine unless PENNY_ALLOW_OPEN=true."""
        if self.api_open and not self.penny_allow_open and not is_loopback(self.sandbox_host):
            raise ConfigError(
                f"SANDBOX_HOST={self.sandbox_host} would serve the API, which runs anyone's code, beyond this "
                "machine without authentication: set PENNY_API_KEYS (or PENNY_API_KEYS_FILE), or bind "
                "SANDBOX_HOST=127.0.0.1, or set PENNY_ALLOW_OPEN=true to run it open on purpose")

    def check_flower_binding(self) -> None:
        """Refuse (ConfigError) to serve Flower without credentials beyond this machine unless
        PENNY_ALLOW_OPEN=true: its API can shut down workers and revoke tasks."""
        if not self.flower_basic_auth and not self.penny_allow_open and not is_loopback(self.flower_host):
            raise ConfigError(
                f"FLOWER_HOST={self.flower_host} would serve Flower, which can shut down workers, beyond this "
                "machine without authentication: set FLOWER_BASIC_AUTH=user:password, or bind "
                "FLOWER_HOST=127.0.0.1, or set PENNY_ALLOW_OPEN=true to run it open on purpose")

    def _check_redis_tls(self) -> None:
        """The REDIS_TLS_* files belong to a rediss:// URL, and a client certificate comes with its key."""
        named = [name for name in ("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
                 if getattr(self, name)]
        if named and not self.redis_url.startswith("rediss://"):
            raise ConfigError(f"{named[0].upper()} is set but REDIS_URL is not rediss:// (TLS)")
        if bool(self.redis_tls_cert_file) != bool(self.redis_tls_key_file):
            raise ConfigError("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE must be set together")

    @property
    def job_timeout_default_ms(self) -> int:
        """The timeout a request gets when it names none: the maximum."""
        return self.max_execution_time
