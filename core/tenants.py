"""Tenants: who an API key acts for, what an admin key may do, and each tenant's quotas.

Keys are compared by their SHA-256 digests (a dictionary lookup of a fixed-length digest; the raw keys are
not kept). With no keys configured the service runs open: every request acts for the tenant "default".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from core.settings import Settings

OPEN_TENANT = "default"


@dataclass(frozen=True)
class Quota:
    """How much of the cluster one tenant may hold at once."""

    max_active_jobs: int  # queued + running jobs
    max_sessions: int  # live sessions


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Caller:
    """The authenticated caller: the tenant its key belongs to (None for an admin-only key)."""

    tenant: str | None
    admin: bool


class Tenants:
    """Maps API keys to callers and tenants to quotas."""

    def __init__(self, settings: Settings) -> None:
        self._tenant_of = {_digest(key): tenant for key, tenant in settings.penny_api_keys}
        self._admins = frozenset(_digest(key) for key in settings.penny_admin_keys)
        self._default = Quota(settings.tenant_max_active_jobs, settings.tenant_max_sessions)
        self._quotas = {tenant: Quota(jobs, sessions) for tenant, jobs, sessions in settings.tenant_quotas}

    @property
    def open(self) -> bool:
        """No tenant key is configured: the API serves anyone as tenant "default" (development)."""
        return not self._tenant_of

    def caller(self, key: str | None) -> Caller | None:
        """The caller a key stands for; None when the key is missing or unknown (and the API is not open)."""
        if self.open:
            return Caller(tenant=OPEN_TENANT, admin=True)
        if not key:
            return None
        digest = _digest(key)
        tenant = self._tenant_of.get(digest)
        admin = digest in self._admins
        if tenant is None and not admin:
            return None
        return Caller(tenant=tenant, admin=admin)

    def quota(self, tenant: str) -> Quota:
        return self._quotas.get(tenant, self._default)
