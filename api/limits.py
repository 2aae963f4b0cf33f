"""Request-rate limits per tenant (Flask-Limiter, counted in Redis so every API process shares them).

Each limited endpoint belongs to a scope whose rate comes from the settings; a tenant's requests to the
endpoints of one scope share one budget, and each tenant has its own:

    execute    RATE_LIMIT_EXECUTE   POST execute, execute/stream, jobs, packages/install, PUT session variables
                                    (a session's executions are POST execute with a sessionId)
    sessions   RATE_LIMIT_SESSIONS  POST sessions
    validate   RATE_LIMIT_VALIDATE  POST validate

A request over its tenant's rate is refused before it does anything: 429 `overloaded` with Retry-After
(seconds until the window that refused it ends) and details {reason: "rate_limited", scope, limit}.
/health, /metrics and the read-only endpoints are not limited. The counters are keyed by tenant (an
admin-only key by its key id), never by the key itself. RATE_LIMIT_ENABLED=false installs nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, cast

from flask import Flask, Response, g
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded

from api.services import Services
from core import keys
from core.errors import ApiError, Overloaded

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
# Fixed windows: one INCR per request (a burst of up to twice the rate can straddle two windows).
STRATEGY = "fixed-window"


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


def install(app: Flask, services: Services,
            render: Callable[[ApiError], tuple[Response, int]]) -> Limiter | None:
    """Limit the endpoints of SCOPES (already registered on app) per tenant; render draws the 429 envelope."""
    if not services.settings.rate_limit_enabled:
        return None
    limiter = Limiter(
        rate_key,
        app=app,
        strategy=STRATEGY,
        # The API's own Redis connections (its URL, credentials and TLS): only the scheme is read from the URI.
        storage_uri="redis://",
        storage_options={"connection_pool": services.redis.connection_pool,  # type: ignore[dict-item]
                         "key_prefix": keys.RATE_LIMIT_PREFIX},
        swallow_errors=False,  # Redis down: the request gets the API's 503, as it would without limits
    )
    rates = _rates(services)
    for endpoint, scope in SCOPES.items():
        limited = limiter.shared_limit(rates[scope], scope=scope, key_func=rate_key)
        app.view_functions[endpoint] = cast(Any, limited(app.view_functions[endpoint]))

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(error: RateLimitExceeded) -> tuple[Response, int]:
        current = limiter.current_limit
        reset_at = current.window[0] if current is not None else time.time() + 1
        retry_after_s = max(1, math.ceil(reset_at - time.time()))
        scope = str(error.limit.scope)
        return render(Overloaded(f"too many {scope} requests for this tenant: the limit is {error.limit.limit}; "
                                 f"retry after {retry_after_s} s", retry_after_s=retry_after_s,
                                 details={"reason": "rate_limited", "scope": scope,
                                          "limit": str(error.limit.limit)}))

    return limiter
