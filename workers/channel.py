"""The attach stream of a sandbox container: JSON lines to its stdin, demultiplexed JSON lines back.

Docker multiplexes a non-tty container's stdout and stderr on one connection: each frame is an 8-byte
header (stream id, 3 zero bytes, big-endian length) and the payload. Stdout carries the runtime's
protocol; stderr carries the runtime's own diagnostics, which we log.
"""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time
from typing import Any

from core.errors import SandboxError

_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
_RECV_SIZE = 262144

log = logging.getLogger(__name__)


class ChannelClosed(SandboxError):
    """The runtime's end of the stream is gone (the container stopped)."""


class ChannelTimeout(SandboxError):
    """No message arrived before the deadline."""


class AttachChannel:
    """A framed, message-level view of one container's attach socket."""

    def __init__(self, sock: socket.socket, *, name: str) -> None:
        self._sock = sock
        self._name = name
        self._raw = b""
        self._lines = b""
        self._write_lock = threading.Lock()
        self.closed = False

    def send(self, message: dict[str, Any]) -> None:
        """Write one request line; safe to call from another thread (cancel)."""
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._write_lock:
            try:
                self._sock.sendall(data)
            except OSError as exc:
                self.closed = True
                raise ChannelClosed(f"{self._name}: cannot write: {exc}") from exc

    def receive(self, deadline: float) -> dict[str, Any]:
        """The next protocol message, waiting until `deadline` (time.monotonic seconds)."""
        while True:
            if b"\n" in self._lines:
                line, self._lines = self._lines.split(b"\n", 1)
                if line.strip():
                    return json.loads(line)
                continue
            self._read_frames(deadline)

    def received(self) -> list[dict[str, Any]]:
        """Every complete message already read from the socket (never waits)."""
        *lines, self._lines = self._lines.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def _read_frames(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelTimeout(f"{self._name}: no answer in time")
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(_RECV_SIZE)
        except TimeoutError:
            raise ChannelTimeout(f"{self._name}: no answer in time") from None
        except OSError as exc:
            self.closed = True
            raise ChannelClosed(f"{self._name}: {exc}") from exc
        if not chunk:
            self.closed = True
            raise ChannelClosed(f"{self._name}: the runtime closed its output")
        self._raw += chunk
        while len(self._raw) >= _HEADER.size:
            stream, length = _HEADER.unpack_from(self._raw)
            if len(self._raw) < _HEADER.size + length:
                break
            payload = self._raw[_HEADER.size:_HEADER.size + length]
            self._raw = self._raw[_HEADER.size + length:]
            if stream == _STDOUT:
                self._lines += payload
            elif stream == _STDERR:
                log.warning("sandbox %s stderr: %s", self._name, payload.decode(errors="replace").rstrip())

    def close(self) -> None:
        """Close our end; with stdin_once the runtime then sees end of input and exits."""
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
