"""GET /api/v1/audit: the audit trail, for admin keys."""

from __future__ import annotations

import datetime

from flask import Blueprint, Response, jsonify, request

from api.apidoc import Param, Reply, documented
from api.auth import require_admin
from api.context import services as current_services
from api.schemas import JOB_STATUSES, AuditPageSchema
from api.sse import is_stream_id
from core.audit import MAX_QUERY_LIMIT, AuditQuery
from core.errors import Forbidden, ValidationFailed
from core.models import JobStatus

bp = Blueprint("audit", __name__, url_prefix="/api/v1")

# Times become bounds of a Redis stream range, whose ids are unsigned 64-bit milliseconds.
MAX_TIME_MS = 2**64 - 1


def _is_decimal(raw: str) -> bool:
    """ASCII digits only (str.isdigit also admits '²' and other scripts' digits), few enough for int() and u64."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 20


def _time_ms(name: str) -> int | None:
    """?since= / ?until= as ms since the epoch: an integer of ms, or an ISO 8601 time (UTC if no zone)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    invalid = ValidationFailed(f"{name} must be an ISO 8601 time from 1970 on, or milliseconds since the epoch",
                               details={"fields": {name: raw}})
    if _is_decimal(raw):
        moment_ms = int(raw)
    else:
        try:
            moment = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise invalid from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        moment_ms = int(moment.timestamp() * 1000)
    if not 0 <= moment_ms <= MAX_TIME_MS:
        raise invalid
    return moment_ms


def _limit() -> int:
    raw = request.args.get("limit", "100")
    if not _is_decimal(raw) or not 1 <= int(raw) <= MAX_QUERY_LIMIT:
        raise ValidationFailed(f"limit must be an integer from 1 to {MAX_QUERY_LIMIT}",
                               details={"fields": {"limit": raw}})
    return int(raw)


def _status() -> str | None:
    status = request.args.get("status") or None
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ValidationFailed(f"status must be one of {', '.join(s.value for s in JobStatus)}",
                               details={"fields": {"status": status}})
    return status


def _cursor() -> str | None:
    cursor = request.args.get("cursor") or None
    # "0-0" is a stream id but no page's cursor: nothing comes before it (and Redis refuses "(0-0" as a bound).
    if cursor is not None and (not is_stream_id(cursor) or cursor == "0-0"):
        raise ValidationFailed("cursor must be the nextCursor of a previous page",
                               details={"fields": {"cursor": cursor}})
    return cursor


@bp.get("/audit")
@documented(tag="audit", errors=(ValidationFailed, Forbidden), params=(
    Param("tenant", "query", "only this tenant's records"),
    Param("status", "query", "only jobs with this status", {"type": "string", "enum": JOB_STATUSES}),
    Param("since", "query", "from this time on: ISO 8601 (UTC without a zone) or ms since the epoch"),
    Param("until", "query", "up to this time: ISO 8601 (UTC without a zone) or ms since the epoch"),
    Param("limit", "query", "records per page", {"type": "integer", "minimum": 1, "maximum": MAX_QUERY_LIMIT}),
    Param("cursor", "query", "the nextCursor of the previous page")),
    ok=Reply(200, "one page of records, newest first", AuditPageSchema))
def audit() -> Response:
    """Execution records, newest first: jobs still open first, then finished ones by when they ended.

    Filters: tenant, status, since, until (ISO 8601 or ms), limit (1..1000), cursor (from nextCursor).
    """
    require_admin()
    query = AuditQuery(tenant=request.args.get("tenant") or None, status=_status(), since_ms=_time_ms("since"),
                       until_ms=_time_ms("until"), limit=_limit(), before=_cursor())
    records, cursor = current_services().audit.query(query)
    return jsonify({"records": records, "count": len(records), "nextCursor": cursor})
