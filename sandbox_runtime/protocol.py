"""The messages between worker, runtime (supervisor) and kernel: typed, framed, and checked on arrival.

Framing is one JSON object per line (json.dumps never emits a raw newline). Three links use it:

- worker -> runtime (the container's stdin): `Exec`, `Cancel`, `Ping`, `Restart`, `Release`, and the file
  requests of sandbox_runtime.files (`FileList`, `FileRead`, `FileWrite`, `FileDelete`, `FileFind`);
- runtime -> worker (the container's stdout): `Ready`, `Output`, `Plot`, `Display`, `Done`, `Pong`,
  `Reset`, `Fatal`, and `FileReply`;
- kernel -> supervisor (the kernel's result pipe, which user code can write to as well): `Started`,
  `Result`, `Plot`, `Display`, `Violation`.

Whatever arrives over the last two links is hostile input: sandbox_runtime.decoding is the only place a
line becomes one of these messages, and it accepts a line only if it is a kind allowed on that link, every
field has its type, and every string, list and nested value is within `Limits`. Stdlib only: this module
runs inside the sandbox and is imported by the worker too.
"""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

READ_SIZE = 65536
STATUSES = frozenset({"success", "error", "timeout", "memory_exceeded", "output_limit", "cancelled",
                      "policy_violation"})
PLOT_FORMATS = frozenset({"png", "svg", "plotly"})
# The runtime bounds what it reports to these sizes; the worker refuses anything larger.
MAX_TEXT_CHARS = 20_000            # an error message, a repr, a note, a traceback line
MAX_TRACEBACK_LINES = 400
MAX_NOTES = 100
MAX_VARIABLES = 200
MAX_VARIABLE_CHARS = 32_000        # one variable's summary, as JSON
MAX_JSON_DEPTH = 32
MAX_NAME_CHARS = 256
MAX_STDIN_CHARS = 2**20            # what input() and sys.stdin of one request can read
# Files move in chunks of at most this many bytes (base64 in the line): every line stays far below the
# LineReader's bound, whatever the file's size.
FILE_CHUNK_BYTES = 2**20
MAX_PATH_CHARS = 4096
MAX_DIR_ENTRIES = 1000             # a listing names at most this many entries (then `truncated`)


class ProtocolError(ValueError):
    """A line that is not a valid message for its link (wrong kind, type or size)."""


@dataclass(frozen=True)
class Limits:
    """Sizes a message may reach: the plot budget decides the largest line."""

    max_plot_bytes: int = 5 * 2**20
    max_plots_bytes: int = 20 * 2**20

    @property
    def max_line_bytes(self) -> int:
        """The longest line any valid message can take (a plot, a rich value, or a `done`)."""
        return 2 * self.max_plot_bytes + MAX_VARIABLES * MAX_VARIABLE_CHARS + 4 * 2**20


# -- requests (worker -> runtime, supervisor -> kernel) ---------------------------------------------------


@dataclass(frozen=True)
class Exec:
    """Run `code` (request `id`); limits in ms and bytes."""

    id: str
    code: str
    timeout_ms: int
    output_limit_bytes: int
    variables: dict[str, Any] = field(default_factory=dict)
    plot_formats: tuple[str, ...] = ("png",)
    max_plot_bytes: int = 5 * 2**20
    max_plots_bytes: int = 20 * 2**20
    stdin: str = ""  # what input() and sys.stdin read; past its end input() raises EOFError
    # Stateless: after `done`, keep the workspace for file requests until `release` (its output files).
    hold: bool = False
    # Stateless: which process forks the kernel, a performance hint only (sandbox_runtime.light_parent):
    # "light" (no heavy library loaded: cheaper to fork) or "heavy" (the supervisor, with the preloads).
    parent: str = "heavy"

    def to_message(self) -> dict[str, Any]:
        return {"op": "exec", **asdict(self), "plot_formats": list(self.plot_formats)}


@dataclass(frozen=True)
class Cancel:
    """Stop the running request."""

    def to_message(self) -> dict[str, Any]:
        return {"op": "cancel"}


@dataclass(frozen=True)
class Ping:
    """Answered with `Pong` (a liveness check)."""

    def to_message(self) -> dict[str, Any]:
        return {"op": "ping"}


@dataclass(frozen=True)
class Restart:
    """Replace a session's interpreter (its variables go, its files stay); answered with a `done`."""

    id: str

    def to_message(self) -> dict[str, Any]:
        return {"op": "restart", "id": self.id}


@dataclass(frozen=True)
class FileList:
    """List the directory `path` (relative to the workspace; "" is the workspace itself)."""

    id: str
    path: str

    def to_message(self) -> dict[str, Any]:
        return {"op": "file_list", "id": self.id, "path": self.path}


@dataclass(frozen=True)
class FileRead:
    """Read at most `length` bytes (<= FILE_CHUNK_BYTES) of the regular file `path` from byte `offset`."""

    id: str
    path: str
    offset: int
    length: int

    def to_message(self) -> dict[str, Any]:
        return {"op": "file_read", **asdict(self)}


@dataclass(frozen=True)
class FileWrite:
    """Write one chunk (base64 `data`, <= FILE_CHUNK_BYTES decoded) of the regular file `path` at byte
    `offset`: offset 0 creates the file (and its parent directories) or truncates it. `size` is the whole
    file's (bytes), `limit_bytes` the workspace's total it may not take it past."""

    id: str
    path: str
    offset: int
    data: str
    size: int
    limit_bytes: int

    def to_message(self) -> dict[str, Any]:
        return {"op": "file_write", **asdict(self)}


@dataclass(frozen=True)
class FileDelete:
    """Remove the file (or empty directory) `path`."""

    id: str
    path: str

    def to_message(self) -> dict[str, Any]:
        return {"op": "file_delete", "id": self.id, "path": self.path}


@dataclass(frozen=True)
class FileFind:
    """The regular files under the workspace whose relative path matches one of `patterns` (globs: `*`
    and `?` within a name, `**` across directories); links are not followed. Answered with their entries,
    each `name` the relative path."""

    id: str
    patterns: tuple[str, ...]

    def to_message(self) -> dict[str, Any]:
        return {"op": "file_find", "id": self.id, "patterns": list(self.patterns)}


@dataclass(frozen=True)
class Release:
    """A held stateless request is over: reset the sandbox now (answered with `reset`)."""

    def to_message(self) -> dict[str, Any]:
        return {"op": "release"}


MAX_PATTERNS = 20
FileRequest = FileList | FileRead | FileWrite | FileDelete | FileFind
Request = Exec | Cancel | Ping | Restart | Release | FileList | FileRead | FileWrite | FileDelete | FileFind


# -- events (runtime -> worker) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The runtime is up: its pid, Python version, preload failures and the image's distributions."""

    pid: int
    python: str
    preload_failed: dict[str, str]
    packages: dict[str, str]

    def to_message(self) -> dict[str, Any]:
        return {"ev": "ready", "pid": self.pid, "python": self.python, "preloadFailed": self.preload_failed,
                "packages": self.packages}


@dataclass(frozen=True)
class Output:
    """Text the running code wrote to stdout or stderr."""

    stream: str
    text: str

    def to_message(self) -> dict[str, Any]:
        return {"ev": self.stream, "text": self.text}


@dataclass(frozen=True)
class Plot:
    """One figure: {format, data, width?, height?}. `after` (kernel link only): the bytes the kernel had
    written to stdout and stderr when it published it, so the supervisor relays them first."""

    data: dict[str, Any]
    after: tuple[int, int] | None = None

    def to_message(self) -> dict[str, Any]:
        return _rich_message("plot", self.data, self.after)

    def size(self) -> int:
        """Bytes the figure counts against the plot budget (its data as sent)."""
        payload = self.data["data"]
        return len(payload) if isinstance(payload, str) else len(json.dumps(payload))


@dataclass(frozen=True)
class Display:
    """A display() bundle: {type, repr, html?, json?}; `after` as for Plot."""

    data: dict[str, Any]
    after: tuple[int, int] | None = None

    def to_message(self) -> dict[str, Any]:
        return _rich_message("display", self.data, self.after)

    def size(self) -> int:
        return len(json.dumps(self.data))


@dataclass(frozen=True)
class Done:
    """How request `id` ended, as the supervisor observed it."""

    id: str
    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    truncated: bool = False
    cpu_ms: int = 0
    peak_memory_bytes: int = 0
    duration_ms: int = 0
    disk_bytes: int = 0
    variables: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    violation: dict[str, str] | None = None
    state: str | None = None  # sessions: "kept" | "lost"

    def to_message(self) -> dict[str, Any]:
        return {"ev": "done", **asdict(self), "notes": list(self.notes)}


@dataclass(frozen=True)
class Pong:
    def to_message(self) -> dict[str, Any]:
        return {"ev": "pong"}


@dataclass(frozen=True)
class Reset:
    """After a stateless request: whether the sandbox is clean again (`survivors` names what was not)."""

    ok: bool
    survivors: tuple[str, ...] = ()

    def to_message(self) -> dict[str, Any]:
        return {"ev": "reset", "ok": self.ok, "survivors": list(self.survivors)}


@dataclass(frozen=True)
class Fatal:
    """The runtime cannot go on."""

    message: str

    def to_message(self) -> dict[str, Any]:
        return {"ev": "fatal", "message": self.message}


@dataclass(frozen=True)
class FileReply:
    """The answer to a file request `id`: `error` (a FILE_ERRORS code) and `message` when it was refused;
    else `entries` (list), `data` (read: base64, `size` the file's whole size) or `size` (write)."""

    id: str
    error: str | None = None
    message: str = ""
    entries: tuple[dict[str, Any], ...] = ()
    truncated: bool = False
    data: str = ""
    size: int = 0

    def to_message(self) -> dict[str, Any]:
        return {"ev": "file", **asdict(self), "entries": list(self.entries)}


# Why a file request was refused: `invalid_path` (outside the workspace, a symlink, a device or FIFO, a
# directory where a file is expected or the reverse), `not_found`, `too_large` (the workspace's total),
# `io` (anything else the file system said).
FILE_ERRORS = frozenset({"invalid_path", "not_found", "too_large", "io"})
FILE_TYPES = frozenset({"file", "directory", "symlink", "other"})

Event = Ready | Output | Plot | Display | Done | Pong | Reset | Fatal | FileReply


# -- kernel -> supervisor ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What the kernel says about request `id` once the cell ended."""

    id: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    variables: dict[str, Any]
    notes: tuple[str, ...]
    cpu_ms: int
    peak_memory_bytes: int

    def to_message(self) -> dict[str, Any]:
        return {"kind": "result", **asdict(self), "notes": list(self.notes)}


@dataclass(frozen=True)
class Violation:
    """The policy layer refused something; sent the moment it happens."""

    rule: str
    target: str
    message: str

    def to_message(self) -> dict[str, Any]:
        return {"kind": "violation", "rule": self.rule, "target": self.target, "message": self.message}

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "target": self.target, "message": self.message}


@dataclass(frozen=True)
class Started:
    """The kernel is about to run request `id`'s code and takes interrupts from now on."""

    id: str

    def to_message(self) -> dict[str, Any]:
        return {"kind": "started", "id": self.id}


KernelMessage = Result | Plot | Display | Violation | Started


# -- framing ----------------------------------------------------------------------------------------------


def encode(message: Request | Event | KernelMessage) -> bytes:
    """One message as a JSON line."""
    return json.dumps(message.to_message(), separators=(",", ":")).encode() + b"\n"


def _rich_message(event: str, data: dict[str, Any], after: tuple[int, int] | None) -> dict[str, Any]:
    message: dict[str, Any] = {"ev": event, "data": data}
    if after is not None:
        message["after"] = list(after)
    return message


def kernel_line(message: KernelMessage) -> bytes:
    """A message of the kernel link as a JSON line: its `kind` in place of the event name."""
    data = message.to_message()
    data["kind"] = data.pop("ev", data.get("kind"))
    return json.dumps(data, separators=(",", ":")).encode() + b"\n"


def write_message(fd: int, message: Request | Event | KernelMessage) -> None:
    """Write one message to fd completely (blocking)."""
    write_line(fd, encode(message))


def write_line(fd: int, line: bytes) -> None:
    """Write one encoded line to fd completely (blocking)."""
    data = memoryview(line)
    while data:
        written = os.write(fd, data)
        data = data[written:]


class LineReader:
    """Splits the bytes read from one fd into lines of at most max_line_bytes; `closed` once the writer
    hung up. A longer line raises ProtocolError (nothing unbounded is buffered)."""

    def __init__(self, fd: int, *, max_line_bytes: int = Limits().max_line_bytes) -> None:
        self.fd = fd
        self.closed = False
        self._max = max_line_bytes
        self._buffer = b""
        self._pending: deque[bytes] = deque()

    def fill(self) -> None:
        """Do one read (blocking unless fd is readable) and queue the lines it completed."""
        chunk = os.read(self.fd, READ_SIZE)
        if not chunk:
            self.closed = True
            return
        self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        """Queue the complete lines in chunk (after what was buffered)."""
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        if any(len(line) > self._max for line in lines) or len(self._buffer) > self._max:
            raise ProtocolError(f"a line longer than {self._max} bytes")
        self._pending.extend(line for line in lines if line.strip())

    def pop(self) -> bytes | None:
        """The oldest complete line already read, if any (never reads)."""
        return self._pending.popleft() if self._pending else None

    def read_line(self) -> bytes | None:
        """Block until one line is complete; None at end of input."""
        while not self._pending:
            if self.closed:
                return None
            self.fill()
        return self._pending.popleft()
