"""An incremental Server-Sent Events parser (pure: bytes in, events out), per the WHATWG event-stream format."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: `id` is the last event id in force when it was dispatched (None if never set)."""

    event: str
    data: str
    id: str | None = None
    retry_ms: int | None = None


class SSEParser:
    """Feed it chunks as they arrive (split anywhere, even inside a UTF-8 character); it returns whole events.

    Lines end in LF, CR or CRLF; `data:` lines join with LF; lines starting with ':' are comments
    (keepalives); an event is dispatched at a blank line, and never when its data is empty (as browsers do).
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._pending_cr = False  # the previous chunk ended in CR: a LF starting this one belongs to it
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by this chunk, in order."""
        text = self._decoder.decode(chunk)
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]
        self._pending_cr = False
        self._buffer += text
        events: list[ServerSentEvent] = []
        while True:
            end = _line_end(self._buffer)
            if end is None:
                break
            line, terminator = self._buffer[:end], self._buffer[end]
            if terminator == "\r" and end + 1 == len(self._buffer):
                self._pending_cr = True  # maybe the first half of CRLF: its LF may start the next chunk
                self._buffer = ""
            elif terminator == "\r" and self._buffer[end + 1] == "\n":
                self._buffer = self._buffer[end + 2:]
            else:
                self._buffer = self._buffer[end + 1:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isdigit():
                self._retry_ms = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return ServerSentEvent(event=event, data="\n".join(data), id=self._last_id or None, retry_ms=self._retry_ms)


def _line_end(buffer: str) -> int | None:
    """Index of the first CR or LF in buffer, or None."""
    cr, lf = buffer.find("\r"), buffer.find("\n")
    if cr < 0 and lf < 0:
        return None
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)
