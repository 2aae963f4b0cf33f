"""Server-Sent Events framing (pure)."""

from __future__ import annotations

import json
import re
from typing import Any

from core.errors import ValidationFailed

KEEPALIVE = b": keepalive\n\n"
# ASCII digits only: `\d` would also admit other scripts' digits, which Redis refuses.
# A stream id, or empty (the start), as the OpenAPI document states Last-Event-ID.
STREAM_ID_PATTERN = r"^([0-9]{1,20}-[0-9]{1,20})?$"
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_MAX_STREAM_ID_PART = 2**64 - 1


def format_event(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    """One SSE event; JSON data is a single line, so one `data:` field suffices."""
    payload = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event_type}\ndata: {payload}\n\n".encode()


def is_stream_id(text: str) -> bool:
    """Whether text is a Redis stream entry id, `<ms>-<seq>` with each part at most 2**64-1 (else Redis errs)."""
    match = _STREAM_ID.fullmatch(text)
    return match is not None and all(int(part) <= _MAX_STREAM_ID_PART for part in match.groups())


def parse_last_event_id(raw: str | None) -> str:
    """The stream position to resume after: a Last-Event-ID we issued, or the start."""
    if raw is None or raw == "":
        return "0-0"
    if not is_stream_id(raw):  # exactly an id (STREAM_ID_PATTERN, as the OpenAPI document states it)
        raise ValidationFailed("Last-Event-ID is not an event id of this stream",
                               details={"lastEventId": raw})
    return raw
