"""The attach stream of a sandbox container: JSON lines to its stdin, demultiplexed lines back.

Docker multiplexes a non-tty container's stdout and stderr on one connection: each frame is an 8-byte
header (stream id, 3 zero bytes, big-endian length) and the payload. Stdout carries the runtime's
protocol; stderr carries the runtime's own diagnostics, which we log (bounded). The channel only frames:
lines are decoded and checked by sandbox_runtime.protocol, and no line longer than max_line_bytes is
ever buffered.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

from core.errors import SandboxError
from sandbox_runtime import protocol

_HEADER = struct.Struct(">BxxxL")
_STDOUT, _STDERR = 1, 2
_RECV_SIZE = 262144

log = logging.getLogger(__name__)


class ChannelClosed(SandboxError):
    """The runtime's end of the stream is gone (the container stopped)."""


class ChannelTimeout(SandboxError):
    """No message arrived before the deadline."""


class InvalidMessage(SandboxError):
    """The runtime sent something that is not a valid message for this channel."""


STDERR_LOG_BYTES = 64 * 1024  # per sandbox: the runtime's diagnostics, not a way to fill the worker's log


class AttachChannel:
    """A framed, message-level view of one container's attach socket."""

    def __init__(self, sock: socket.socket, *, name: str,
                 max_line_bytes: int = protocol.Limits().max_line_bytes) -> None:
        self._sock = sock
        self._name = name
        self._max_line_bytes = max_line_bytes
        self._raw = b""
        self._lines = b""
        self._stderr_logged = 0
        self._write_lock = threading.Lock()
        self.closed = False

    def send(self, message: protocol.Request) -> None:
        """Write one request line; safe to call from another thread (cancel)."""
        data = protocol.encode(message)
        with self._write_lock:
            try:
                self._sock.sendall(data)
            except OSError as exc:
                self.closed = True
                raise ChannelClosed(f"{self._name}: cannot write: {exc}") from exc

    def receive(self, deadline: float) -> bytes:
        """The next line, waiting until `deadline` (time.monotonic seconds)."""
        while True:
            if b"\n" in self._lines:
                line, self._lines = self._lines.split(b"\n", 1)
                if line.strip():
                    return line
                continue
            self._read_frames(deadline)

    def received(self) -> list[bytes]:
        """Every complete line already read from the socket (never waits)."""
        *lines, self._lines = self._lines.split(b"\n")
        return [line for line in lines if line.strip()]

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
            if stream not in (_STDOUT, _STDERR) or length > self._max_line_bytes + _RECV_SIZE:
                raise InvalidMessage(f"{self._name}: an invalid frame header")
            if len(self._raw) < _HEADER.size + length:
                break
            payload = self._raw[_HEADER.size:_HEADER.size + length]
            self._raw = self._raw[_HEADER.size + length:]
            if stream == _STDOUT:
                self._lines += payload
                if len(self._lines) - self._lines.rfind(b"\n") > self._max_line_bytes:
                    raise InvalidMessage(f"{self._name}: a line longer than {self._max_line_bytes} bytes")
            elif stream == _STDERR and self._stderr_logged < STDERR_LOG_BYTES:
                self._stderr_logged += len(payload)
                log.warning("sandbox %s stderr: %s", self._name,
                            payload[:STDERR_LOG_BYTES].decode(errors="replace").rstrip())

    def close(self) -> None:
        """Close our end; with stdin_once the runtime then sees end of input and exits."""
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
