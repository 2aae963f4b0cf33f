"""Server-Sent Events framing (pure)."""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import ValidationFailed

KEEPALIVE = b": keepalive\n\n"
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def format_event(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    """One SSE event; JSON data is a single line, so one `data:` field suffices."""
    payload = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event_type}\ndata: {payload}\n\n".encode()


def parse_last_event_id(raw: str | None) -> str:
    """The stream position to resume after: a Last-Event-ID we issued, or the start."""
    if raw is None or raw.strip() == "":
        return "0-0"
    raw = raw.strip()
    if not _STREAM_ID.match(raw):
        raise ValidationFailed("Last-Event-ID is not an event id of this stream",
                               details={"lastEventId": raw})
    return raw
