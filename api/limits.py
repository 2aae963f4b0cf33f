"""Request-rate limits per tenant (the `limits` library's fixed windows, counted in Redis so every API
process shares them; one script call per limited request, nothing for the others).

Each limited endpoint belongs to a scope whose rate comes from the settings; a tenant's requests to the
endpoints of one scope share one budget, and each tenant has its own:

    execute    RATE_LIMIT_EXECUTE   POST execute, execute/stream, jobs, packages/install, PUT session variables
                                    (a session's executions are POST execute with a sessionId)
    sessions   RATE_LIMIT_SESSIONS  POST sessions
    validate   RATE_LIMIT_VALIDATE  POST validate

A request over its tenant's rate is refused before it does anything: 429 `overloaded` with Retry-After
(seconds until the window that refused it ends) and details {reason: "rate_limited", scope, limit}.
/health, /metrics and the read-only endpoints are not limited. The counters are keyed by tenant (an
admin-only key by its key id), never by the key itself. RATE_LIMIT_ENABLED=false installs nothing. A fixed
window lets a burst of up to twice the rate straddle two windows.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, g
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from api.services import Services
from core import keys
from core.errors import Overloaded

log = logging.getLogger(__name__)

# endpoint (blueprint.function) -> scope
SCOPES: dict[str, str] = {
    "executions.execute": "execute",
    "executions.execute_stream": "execute",
    "executions.create_job": "execute",
    "packages.install_packages": "execute",
    "sessions.set_variables": "execute",
    "sessions.create_session": "sessions",
    "validation.validate": "validate",
}


def _rates(services: Services) -> dict[str, str]:
    settings = services.settings
    return {"execute": settings.rate_limit_execute, "sessions": settings.rate_limit_sessions,
            "validate": settings.rate_limit_validate}


def rate_key() -> str:
    """Whose budget a request spends: its tenant's (authenticate() ran before any limited view)."""
    caller = g.get("caller")
    if caller is None:
        return "anonymous"
    return f"tenant:{caller.tenant}" if caller.tenant is not None else f"key:{caller.key_id}"


class TenantRates:
    """One fixed-window counter per (tenant, scope), in Redis: one script call per limited request."""

    def __init__(self, services: Services) -> None:
        # The API's own Redis connections (its URL, credentials and TLS): only the scheme is read from the URI.
        storage = RedisStorage("redis://", connection_pool=services.redis.connection_pool,
                               key_prefix=keys.RATE_LIMIT_PREFIX)
        self._limiter = FixedWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {scope: parse(rate) for scope, rate in _rates(services).items()}

    def spend(self, scope: str) -> None:
        """Count one request of the caller's tenant in scope; Overloaded (429) past the rate."""
        item, who = self._items[scope], rate_key()
        if self._limiter.hit(item, who, scope):
            return
        log.info("ratelimit %s of %s exceeded by %s", item, scope, who)  # who: a tenant or key id, never a key
        reset_at, _remaining = self._limiter.get_window_stats(item, who, scope)
        retry_after_s = max(1, math.ceil(reset_at - time.time()))
        raise Overloaded(f"too many {scope} requests for this tenant: the limit is {item}; "
                         f"retry after {retry_after_s} s", retry_after_s=retry_after_s,
                         details={"reason": "rate_limited", "scope": scope, "limit": str(item)})


def install(app: Flask, services: Services) -> TenantRates | None:
    """Limit the endpoints of SCOPES (already registered on app) per tenant, with the `limits` library's
    fixed windows: a view spends its tenant's budget before it does anything."""
    if not services.settings.rate_limit_enabled:
        return None
    rates = TenantRates(services)
    for endpoint, scope in SCOPES.items():
        app.view_functions[endpoint] = _limited(app.view_functions[endpoint], rates, scope)
    return rates


def _limited(view: Callable[..., Any], rates: TenantRates, scope: str) -> Callable[..., Any]:
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        rates.spend(scope)
        return view(*args, **kwargs)

    return limited
