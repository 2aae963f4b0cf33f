"""What the audit trail stores as a job's `errorType`: one of a known, bounded set.

A job's error type is whatever name the exception's class had, and user code chooses that name (any text,
any length: `type('x' * 10**5, (Exception,), {})`). The trail must stay groupable and small, so
`errorType` is a built-in exception's name, one the sandbox runtime gives its own failures, one the
service gives its own failures (only when the service itself produced the failure: a user's exception
class named `WorkerLost` is not a lost worker), or USER_DEFINED; the user's own class name is kept apart,
in `userErrorType`, reduced to identifier characters and MAX_USER_TYPE_CHARS (None if nothing of it is
left).
"""

from __future__ import annotations

import builtins
import re

USER_DEFINED = "UserDefinedError"
MAX_USER_TYPE_CHARS = 64

BUILTIN_ERROR_TYPES = frozenset(name for name, value in vars(builtins).items()
                                if isinstance(value, type) and issubclass(value, BaseException))
# Failures the sandbox runtime names itself (sandbox_runtime.supervisor and guard). User code runs beside
# the runtime and can raise these names too; the audit's `violation` field says when the runtime refused.
RUNTIME_ERROR_TYPES = frozenset({"FilesystemPolicyError", "PolicyViolationError", "ProcessExit", "ProtocolError"})
# Failures the worker or the service name themselves (workers.sandbox.failure_done, workers.runner,
# core.jobs, core.sessions): accepted only from them, never from what a sandbox reported.
SERVICE_ERROR_TYPES = frozenset({
    "Cancelled", "DeadlineExceeded", "InternalError", "InvalidSandboxMessage", "IsolationUnavailable",
    "PackageInstallError", "SandboxError", "SandboxUnavailable", "SessionGone", "SessionLost", "Unavailable",
    "WorkerLost",
})
KNOWN_ERROR_TYPES = BUILTIN_ERROR_TYPES | RUNTIME_ERROR_TYPES | SERVICE_ERROR_TYPES
_FROM_SANDBOX = BUILTIN_ERROR_TYPES | RUNTIME_ERROR_TYPES
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_.]")


def audited_error_type(raw: object, *, by_service: bool = False) -> tuple[str | None, str | None]:
    """(errorType, userErrorType) for a job's error type name; (None, None) when it has no error.
    by_service: the worker or the service produced the error (not the sandbox)."""
    if raw is None:
        return None, None
    if isinstance(raw, str) and raw in (KNOWN_ERROR_TYPES if by_service else _FROM_SANDBOX):
        return raw, None
    cleaned = _NOT_IDENTIFIER.sub("", str(raw))[:MAX_USER_TYPE_CHARS]
    return USER_DEFINED, cleaned or None
