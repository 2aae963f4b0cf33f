"""Audit records of session creation and deletion, in the same stream as the executions' records.

A session is created with variables (possibly secrets) and packages: the record keeps each variable's
name and the size of its JSON value in bytes, never the value, and the package specs. Records carry
`jobId: null` and `kind` `session_create` or `session_delete`, so GET /api/v1/audit, its filters and the
audit file (core.audit.AuditArchiver) take them like any other record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from core import keys
from core.models import iso_time

MAX_NAME_CHARS = 128


def variable_sizes(variables: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each variable's name (bounded) and the size in bytes of its compact JSON value; never the value."""
    return [{"name": str(name)[:MAX_NAME_CHARS],
             "bytes": len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())}
            for name, value in variables.items()]


def creation_record(session_id: str, *, tenant: str, key_id: str | None, at_ms: int, http_status: int,
                    worker: str | None, variables: Mapping[str, Any], packages: Sequence[str],
                    isolation: str = "runc") -> dict[str, Any]:
    """The record of one POST /sessions, whatever its outcome (http_status 201: created); isolation is the
    tier its sandbox was (or would have been) taken from."""
    return {"jobId": None, "kind": "session_create", "sessionId": session_id, "tenant": tenant, "keyId": key_id,
            "status": "created" if http_status == 201 else "refused", "httpStatus": http_status,
            "worker": worker, "at": iso_time(at_ms), "atMs": at_ms,
            "variables": variable_sizes(variables), "packages": list(packages), "isolation": isolation}


def deletion_record(session_id: str, *, tenant: str, key_id: str | None, at_ms: int, worker: str,
                    previous_status: str, isolation: str = "runc") -> dict[str, Any]:
    """The record of one DELETE /sessions/{id} that deleted the session (of tier isolation)."""
    return {"jobId": None, "kind": "session_delete", "sessionId": session_id, "tenant": tenant, "keyId": key_id,
            "status": "deleted", "previousStatus": previous_status, "worker": worker, "at": iso_time(at_ms),
            "atMs": at_ms, "isolation": isolation}


def append(client: redis.Redis, record: Mapping[str, Any], *, maxlen: int) -> None:
    """Add record to the audit stream (bounded to about maxlen records, as the executions' records)."""
    client.xadd(keys.AUDIT_STREAM, {"data": json.dumps(record)}, maxlen=maxlen, approximate=True)
