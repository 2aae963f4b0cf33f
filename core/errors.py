"""The exception tree of PENNY Sandbox.

    PennyError                       our machinery failed (never the user's code: that is a result)
    ├── ConfigError                  a setting or policy file is invalid; start-up stops
    ├── ApiError                     a request is refused; carries `code` and `http_status`
    │   ├── ValidationFailed         400 validation_error
    │   ├── Unauthorized             401 unauthorized
    │   ├── Forbidden                403 forbidden (a valid key without the right: the audit trail)
    │   ├── NotFound                 404 not_found
    │   ├── Conflict                 409 conflict
    │   ├── PayloadTooLarge          413 payload_too_large
    │   ├── PolicyViolation          422 policy_violation
    │   ├── UnsupportedMediaType     415 unsupported_media_type
    │   ├── Unsupported              400 unsupported (a feature this version does not offer yet)
    │   ├── Overloaded               429 overloaded (+ Retry-After)
    │   └── Unavailable              503 unavailable (+ Retry-After)
    └── SandboxError                 a sandbox container or its runtime misbehaved (worker side)
"""

from __future__ import annotations

from typing import Any


class PennyError(Exception):
    """Root of every exception raised by PENNY Sandbox's own code."""


class ConfigError(PennyError):
    """A setting or policy is invalid; the message names the variable or key."""


class ApiError(PennyError):
    """A refused request, rendered as the JSON error envelope."""

    code = "error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None,
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.retry_after_s = retry_after_s

    def to_envelope(self) -> dict[str, Any]:
        """The `{"error": {code, message, details}}` body."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(ApiError):
    code = "validation_error"
    http_status = 400


class Unauthorized(ApiError):
    code = "unauthorized"
    http_status = 401


class Forbidden(ApiError):
    code = "forbidden"
    http_status = 403


class NotFound(ApiError):
    code = "not_found"
    http_status = 404


class Conflict(ApiError):
    code = "conflict"
    http_status = 409


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    http_status = 413


class PolicyViolation(ApiError):
    code = "policy_violation"
    http_status = 422


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    http_status = 415


class Unsupported(ApiError):
    code = "unsupported"
    http_status = 400


class Overloaded(ApiError):
    code = "overloaded"
    http_status = 429


class Unavailable(ApiError):
    code = "unavailable"
    http_status = 503


class SandboxError(PennyError):
    """A sandbox container or the runtime inside it failed (not the user's code)."""
