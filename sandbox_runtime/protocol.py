"""Newline-delimited JSON framing, used on stdin/stdout (worker <-> runtime) and on the kernel pipes.

Requests (worker -> runtime): {"op": "exec", "code", "timeout_ms", "variables", "output_limit_bytes"},
{"op": "cancel"} while an exec runs, {"op": "ping"}.
Events (runtime -> worker): {"ev": "ready"}, {"ev": "stdout"|"stderr", "text"}, {"ev": "done", ...},
{"ev": "pong"}, {"ev": "fatal", "message"}.
"""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Any

READ_SIZE = 65536


def encode(message: dict[str, Any]) -> bytes:
    """One message as a JSON line (json.dumps never emits a raw newline)."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def write_message(fd: int, message: dict[str, Any]) -> None:
    """Write one message to fd completely (blocking)."""
    data = memoryview(encode(message))
    while data:
        written = os.write(fd, data)
        data = data[written:]


class LineReader:
    """Splits the bytes read from one fd into JSON messages; `closed` once the writer hung up."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.closed = False
        self._buffer = b""
        self._pending: deque[dict[str, Any]] = deque()

    def fill(self) -> None:
        """Do one read (blocking unless fd is readable) and queue the messages it completed."""
        chunk = os.read(self.fd, READ_SIZE)
        if not chunk:
            self.closed = True
            return
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        self._pending.extend(json.loads(line) for line in lines if line.strip())

    def pop(self) -> dict[str, Any] | None:
        """The oldest complete message already read, if any (never reads)."""
        return self._pending.popleft() if self._pending else None

    def read_one(self) -> dict[str, Any] | None:
        """Block until one message is complete; None at end of input."""
        while not self._pending:
            if self.closed:
                return None
            self.fill()
        return self._pending.popleft()
