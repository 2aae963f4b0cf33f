"""Cross-origin access (CORS) for browser pages on other origins: off unless CORS_ORIGINS lists some.

A listed origin may call /api/v1 with `Authorization` (the bearer key), `Content-Type` and `Last-Event-ID`,
and may read Location and Retry-After; no cookies are involved, so credentials stay off. Preflights (OPTIONS)
carry no key: authenticate() lets them through, and they answer only with headers (Flask's automatic OPTIONS).
"""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

ALLOWED_HEADERS = ["Authorization", "Content-Type", "Last-Event-ID"]
EXPOSED_HEADERS = ["Location", "Retry-After"]
PREFLIGHT_MAX_AGE_S = 600


def install(app: Flask, origins: tuple[str, ...]) -> None:
    """Answer CORS for the listed origins on /api/v1 (nothing at all when origins is empty)."""
    if not origins:
        return
    CORS(app, resources={r"/api/v1/*": {"origins": list(origins)}}, allow_headers=ALLOWED_HEADERS,
         expose_headers=EXPOSED_HEADERS, methods=["GET", "POST", "PUT", "DELETE"],
         max_age=PREFLIGHT_MAX_AGE_S, supports_credentials=False, vary_header=True)
