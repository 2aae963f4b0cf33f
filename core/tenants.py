"""Tenants: who an API key acts for, what an admin key may do, and each tenant's quotas.

Keys are secrets: only their SHA-256 digests are kept, a presented key is compared with every configured
digest in constant time (hmac.compare_digest, no early exit, no lookup keyed by the secret), and what is
logged or audited about a key is its id (key_id: a short hash), never the key. With no keys configured the
service runs open: every request acts for the tenant "default".
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from core.settings import Settings

OPEN_TENANT = "default"
KEY_ID_HEX = 12  # hex digits of a key's SHA-256 that name it (48 bits: ids of distinct keys do not collide)


@dataclass(frozen=True)
class Quota:
    """How much of the cluster one tenant may hold at once."""

    max_active_jobs: int  # queued + running jobs
    max_sessions: int  # live sessions


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str) -> str:
    """A key's public name for logs and the audit trail: the first 12 hex digits of its SHA-256."""
    return _digest(key).hex()[:KEY_ID_HEX]


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the tenant its key belongs to (None for an admin-only key), and the key's id
    (None when the API runs open)."""

    tenant: str | None
    admin: bool
    key_id: str | None = None


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    tenant: str | None
    admin: bool


class Tenants:
    """Maps API keys to callers and tenants to quotas."""

    def __init__(self, settings: Settings) -> None:
        tenant_of = {_digest(key): tenant for key, tenant in settings.penny_api_keys}
        admins = {_digest(key) for key in settings.penny_admin_keys}
        self._entries = tuple(_Entry(digest, tenant_of.get(digest), digest in admins)
                              for digest in sorted(set(tenant_of) | admins))
        self._open = not tenant_of
        self._default = Quota(settings.tenant_max_active_jobs, settings.tenant_max_sessions)
        self._quotas = {tenant: Quota(jobs, sessions) for tenant, jobs, sessions in settings.tenant_quotas}

    @property
    def open(self) -> bool:
        """No tenant key is configured: the API serves anyone as tenant "default" (development)."""
        return self._open

    def caller(self, key: str | None) -> Caller | None:
        """The caller a key stands for; None when the key is missing or unknown (and the API is not open).

        The presented key's digest is compared with every configured one, each comparison in constant time
        and none skipped: how long this takes does not depend on which key (if any) matched, or how much of
        it did."""
        if self._open:
            return Caller(tenant=OPEN_TENANT, admin=True)
        if not key:
            return None
        digest = _digest(key)
        found: _Entry | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry
        if found is None:
            return None
        return Caller(tenant=found.tenant, admin=found.admin, key_id=key_id(key))

    def quota(self, tenant: str) -> Quota:
        return self._quotas.get(tenant, self._default)
