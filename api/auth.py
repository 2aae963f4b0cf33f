"""Who is calling: `Authorization: Bearer <key>` -> the caller's tenant (401 without a valid key).

The key is a secret: it is never logged, put in an error message or stored; core.tenants compares it in
constant time and names it by its id (a short hash)."""

from __future__ import annotations

from flask import g, request

from core.errors import Forbidden, Unauthorized
from core.tenants import Caller, Tenants

# The service's probes, and the API describing itself (its spec, its version, the /docs page and its files).
PUBLIC_PATHS = ("/health", "/metrics", "/api/v1/openapi.json", "/api/v1/version", "/docs")
PUBLIC_PREFIXES = ("/docs/",)
# The playground's static files (api.playground): they hold no data; the page sends the key to /api/v1.
PUBLIC_BLUEPRINTS = ("playground",)


def _bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def authenticate(tenants: Tenants) -> None:
    """Before every request: remember the caller, or refuse with 401 (PUBLIC_PATHS, the
    playground's files and preflights excepted)."""
    if (request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES)
            or request.blueprint in PUBLIC_BLUEPRINTS):
        return
    if request.method == "OPTIONS":  # a CORS preflight carries no key; Flask answers it with headers only
        return
    caller = tenants.caller(_bearer_key())
    if caller is None:
        raise Unauthorized("a valid API key is required: send `Authorization: Bearer <key>`")
    g.caller = caller


def _caller() -> Caller:
    caller = g.get("caller")
    if caller is None:  # only reachable if a route is served without authenticate() having run
        raise Unauthorized("a valid API key is required: send `Authorization: Bearer <key>`")
    return caller


def current_tenant() -> str:
    """The tenant the request acts for; 403 for an admin key that belongs to no tenant."""
    tenant = _caller().tenant
    if tenant is None:
        raise Forbidden("this key may read the audit trail only; use a tenant's key to run code")
    return tenant


def current_key_id() -> str | None:
    """The id (a short hash) of the key the request came with, for the audit trail; None when the API runs open."""
    return _caller().key_id


def require_admin() -> None:
    """403 unless the caller holds an admin key (or the API runs open)."""
    if not _caller().admin:
        raise Forbidden("this endpoint needs an admin key (PENNY_ADMIN_KEYS)")
