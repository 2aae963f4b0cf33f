"""The exceptions of the PENNY client: one root, a branch for refused requests and one for a service in trouble.

    PennyClientError                 anything the client raises (a user's failing code is a result, not this)
    ├── ConnectionFailed             the service could not be reached, or a stream could not be resumed
    └── ApiError                     the service answered with the error envelope; `code`, `http_status`, `details`
        ├── RequestError             4xx: this request will not succeed as it is (an unknown 4xx code lands here)
        │   ├── ValidationError      400 validation_error
        │   ├── Unsupported          400 unsupported (a feature this server version does not offer)
        │   ├── Unauthorized         401 unauthorized
        │   ├── Forbidden            403 forbidden (a valid key without the right: the audit trail needs an admin key)
        │   ├── NotFound             404 not_found (also an endpoint the server does not have yet)
        │   ├── Conflict             409 conflict (e.g. the session is lost or expired; the job already ended)
        │   ├── PayloadTooLarge      413 payload_too_large
        │   ├── UnsupportedMediaType 415 unsupported_media_type
        │   └── PolicyViolation      422 policy_violation
        └── ServiceError             429 and 5xx: the service cannot serve now (an unknown 5xx code lands here)
            ├── Overloaded           429 overloaded (`retry_after_s` from Retry-After)
            ├── Unavailable          503 unavailable (`retry_after_s` from Retry-After)
            └── InternalError        500 internal_error
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class PennyClientError(Exception):
    """Root of every exception the PENNY client raises."""


class ConnectionFailed(PennyClientError):
    """No answer from the service (connect or read failed after the allowed retries)."""


class ApiError(PennyClientError):
    """A request the service refused, with the fields of its error envelope."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, http_status: int = 0,
                 details: Mapping[str, Any] | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.http_status = http_status
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.code} ({self.http_status}): {self.message}"


class RequestError(ApiError):
    """The request itself was refused (4xx other than 429): retrying it unchanged will not help."""


class ValidationError(RequestError):
    code = "validation_error"


class Unsupported(RequestError):
    code = "unsupported"


class Unauthorized(RequestError):
    code = "unauthorized"


class Forbidden(RequestError):
    code = "forbidden"


class NotFound(RequestError):
    code = "not_found"


class Conflict(RequestError):
    code = "conflict"


class PayloadTooLarge(RequestError):
    code = "payload_too_large"


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"


class PolicyViolation(RequestError):
    code = "policy_violation"


class ServiceError(ApiError):
    """The service cannot serve the request now (429, 5xx); a later retry may succeed."""


class Overloaded(ServiceError):
    code = "overloaded"


class Unavailable(ServiceError):
    code = "unavailable"


class InternalError(ServiceError):
    code = "internal_error"


_BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (ValidationError, Unsupported, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                UnsupportedMediaType, PolicyViolation, Overloaded, Unavailable, InternalError)
}


def parse_retry_after(raw: str | None) -> float | None:
    """Retry-After in seconds (the delta-seconds form the service sends), or None."""
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None  # an HTTP date: not sent by the service; treat as absent
    return max(seconds, 0.0)


def error_from_response(http_status: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
    """The exception for a refused request: by envelope code, else by the status's branch."""
    retry_after_s = parse_retry_after(headers.get("retry-after") or headers.get("Retry-After"))
    code: str | None = None
    message = body.decode("utf-8", "replace").strip()[:500] or f"HTTP {http_status}"
    details: dict[str, Any] = {}
    try:
        envelope = json.loads(body)
    except ValueError:
        envelope = None
    if isinstance(envelope, dict) and isinstance(envelope.get("error"), dict):
        error = envelope["error"]
        code = str(error.get("code") or "") or None
        message = str(error.get("message") or message)
        details = error.get("details") if isinstance(error.get("details"), dict) else {}
    cls = _BY_CODE.get(code or "")
    if cls is None:
        cls = RequestError if 400 <= http_status < 500 and http_status != 429 else ServiceError
    return cls(message, code=code or f"http_{http_status}", http_status=http_status, details=details,
               retry_after_s=retry_after_s)
