"""Lines into messages: the one place where bytes from the other side of a link become typed messages.

Each decoder accepts a line only if it is a kind allowed on its link, every field has its type, and every
string, list and nested value is within the sizes of sandbox_runtime.protocol; anything else raises
ProtocolError. The supervisor decodes the kernel's result pipe with it (user code can write there), the
worker everything the runtime sends. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from sandbox_runtime.protocol import (
    FILE_CHUNK_BYTES,
    FILE_ERRORS,
    FILE_TYPES,
    MAX_DIR_ENTRIES,
    MAX_JSON_DEPTH,
    MAX_NAME_CHARS,
    MAX_NOTES,
    MAX_PATH_CHARS,
    MAX_PATTERNS,
    MAX_STDIN_CHARS,
    MAX_TEXT_CHARS,
    MAX_TRACEBACK_LINES,
    MAX_VARIABLE_CHARS,
    MAX_VARIABLES,
    PLOT_FORMATS,
    READ_SIZE,
    STATUSES,
    Cancel,
    Display,
    Done,
    Event,
    Exec,
    Fatal,
    FileDelete,
    FileFind,
    FileList,
    FileRead,
    FileReply,
    FileWrite,
    KernelMessage,
    Limits,
    Output,
    Ping,
    Plot,
    Pong,
    ProtocolError,
    Ready,
    Release,
    Request,
    Reset,
    Restart,
    Result,
    Started,
    Violation,
)

# base64 of one chunk: 4 characters for every 3 bytes, padded.
_CHUNK_CHARS = 4 * ((FILE_CHUNK_BYTES + 2) // 3)


def _load(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("not a JSON object")
    return value


def _str(data: dict[str, Any], key: str, limit: int = MAX_TEXT_CHARS, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ProtocolError(f"{key}: a string of at most {limit} characters expected")
    return value


def _int(data: dict[str, Any], key: str, low: int = 0, high: int = 2**53) -> int:
    value = data.get(key, 0)
    if type(value) is not int or not low <= value <= high:
        raise ProtocolError(f"{key}: an integer in [{low}, {high}] expected")
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if type(value) is not bool:
        raise ProtocolError(f"{key}: a boolean expected")
    return value


def _json_size(value: Any, limit: int, depth: int = MAX_JSON_DEPTH) -> int:
    """Bytes of value as JSON (iteratively, bounded by depth); ProtocolError past limit."""
    total = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if level > depth:
            raise ProtocolError(f"nested deeper than {depth} levels")
        if isinstance(item, dict):
            total += 2
            for key, child in item.items():
                total += len(key) + 4
                stack.append((child, level + 1))
        elif isinstance(item, list):
            total += 2 + len(item)
            stack.extend((child, level + 1) for child in item)
        elif isinstance(item, str):
            total += len(item) + 2
        else:
            total += 24
        if total > limit:
            raise ProtocolError(f"a value larger than {limit} bytes")
    return total


def _object(data: dict[str, Any], key: str, limit: int, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(f"{key}: an object expected")
    _json_size(value, limit)
    return value


def _error(data: dict[str, Any]) -> dict[str, Any] | None:
    error = data.get("error")
    if error is None:
        return None
    if not isinstance(error, dict) or set(error) - {"type", "message", "traceback"}:
        raise ProtocolError("error: {type, message, traceback} expected")
    traceback = error.get("traceback", [])
    if (not isinstance(traceback, list) or len(traceback) > MAX_TRACEBACK_LINES
            or not all(isinstance(line, str) and len(line) <= MAX_TEXT_CHARS for line in traceback)):
        raise ProtocolError("error.traceback: a bounded list of strings expected")
    return {"type": _str(error, "type", MAX_NAME_CHARS), "message": _str(error, "message"),
            "traceback": traceback}


def _value(data: dict[str, Any], limits: Limits) -> dict[str, Any] | None:
    """A trailing value's bundle: {type, repr, html?, json?, png?, svg?}."""
    value = _object(data, "result", limits.max_plot_bytes + 2 * MAX_TEXT_CHARS, optional=True)
    if value is not None:
        _str(value, "type", MAX_NAME_CHARS)
        _str(value, "repr")
    return value


def _variables(data: dict[str, Any]) -> dict[str, Any]:
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or len(variables) > MAX_VARIABLES:
        raise ProtocolError(f"variables: at most {MAX_VARIABLES} entries expected")
    for name, summary in variables.items():
        if len(name) > MAX_NAME_CHARS or not isinstance(summary, dict):
            raise ProtocolError("variables: {name: summary} expected")
        _json_size(summary, MAX_VARIABLE_CHARS, depth=4)
        _str(summary, "type", MAX_NAME_CHARS)
    return variables


def _notes(data: dict[str, Any]) -> tuple[str, ...]:
    notes = data.get("notes", [])
    if (not isinstance(notes, list) or len(notes) > MAX_NOTES
            or not all(isinstance(note, str) and len(note) <= MAX_TEXT_CHARS for note in notes)):
        raise ProtocolError(f"notes: at most {MAX_NOTES} strings expected")
    return tuple(notes)


def _violation(data: dict[str, Any]) -> Violation:
    return Violation(_str(data, "rule", MAX_NAME_CHARS), _str(data, "target", MAX_TEXT_CHARS),
                     _str(data, "message"))


def _plot(data: dict[str, Any], limits: Limits) -> Plot:
    plot = data.get("data")
    if not isinstance(plot, dict) or plot.get("format") not in PLOT_FORMATS:
        raise ProtocolError("plot: {format, data} expected")
    if set(plot) - {"format", "data", "width", "height"}:
        raise ProtocolError("plot: unknown fields")
    for key in ("width", "height"):
        if key in plot:
            _int(plot, key, 0, 100_000)
    payload = plot.get("data")
    if plot["format"] == "plotly":
        if not isinstance(payload, dict):
            raise ProtocolError("plot.data: a plotly figure expected")
        _json_size(payload, limits.max_plot_bytes)
    elif not isinstance(payload, str) or len(payload) > limits.max_plot_bytes:
        raise ProtocolError(f"plot.data: a string of at most {limits.max_plot_bytes} characters expected")
    return Plot(plot)


def _after(data: dict[str, Any]) -> tuple[int, int] | None:
    """A rich message's output positions from the kernel: [stdout bytes, stderr bytes] written before it."""
    after = data.get("after")
    if after is None:
        return None
    if (not isinstance(after, list) or len(after) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 2**53 for n in after)):
        raise ProtocolError("after: two byte counts expected")
    return after[0], after[1]


def _display(data: dict[str, Any], limits: Limits) -> Display:
    bundle = _object(data, "data", limits.max_plot_bytes)
    _str(bundle, "type", MAX_NAME_CHARS)
    _str(bundle, "repr")
    return Display(bundle)


def decode_request(line: bytes) -> Request:
    """A request line from the worker (or the supervisor, to the kernel)."""
    data = _load(line)
    op = data.get("op")
    if op == "cancel":
        return Cancel()
    if op == "ping":
        return Ping()
    if op == "restart":
        return Restart(_str(data, "id", MAX_NAME_CHARS))
    if op == "release":
        return Release()
    if op == "file_find":
        patterns = data.get("patterns")
        if (not isinstance(patterns, list) or len(patterns) > MAX_PATTERNS
                or not all(isinstance(p, str) and len(p) <= MAX_PATH_CHARS for p in patterns)):
            raise ProtocolError(f"file_find.patterns: at most {MAX_PATTERNS} strings expected")
        return FileFind(_str(data, "id", MAX_NAME_CHARS), tuple(patterns))
    if op in ("file_list", "file_read", "file_write", "file_delete"):
        return _file_request(op, data)
    if op != "exec":
        raise ProtocolError(f"unknown op {op!r}")
    variables = data.get("variables") or {}
    formats = data.get("plot_formats") or ["png"]
    if not isinstance(variables, dict) or not isinstance(formats, list):
        raise ProtocolError("exec: variables must be an object, plot_formats a list")
    return Exec(id=_str(data, "id", MAX_NAME_CHARS), code=_str(data, "code", 2**26),
                timeout_ms=_int(data, "timeout_ms", 1), output_limit_bytes=_int(data, "output_limit_bytes"),
                variables=variables, plot_formats=tuple(str(f) for f in formats),
                max_plot_bytes=_int({"v": data.get("max_plot_bytes", Exec.max_plot_bytes)}, "v"),
                max_plots_bytes=_int({"v": data.get("max_plots_bytes", Exec.max_plots_bytes)}, "v"),
                stdin=_str({"stdin": data.get("stdin", "")}, "stdin", MAX_STDIN_CHARS), hold=_bool(data, "hold"),
                parent="light" if data.get("parent") == "light" else "heavy")


def _file_request(op: str, data: dict[str, Any]) -> FileList | FileRead | FileWrite | FileDelete:
    request_id, path = _str(data, "id", MAX_NAME_CHARS), _str(data, "path", MAX_PATH_CHARS)
    if op == "file_list":
        return FileList(request_id, path)
    if op == "file_delete":
        return FileDelete(request_id, path)
    if op == "file_read":
        return FileRead(request_id, path, _int(data, "offset"), _int(data, "length", 0, FILE_CHUNK_BYTES))
    return FileWrite(request_id, path, _int(data, "offset"), _str(data, "data", _CHUNK_CHARS),
                     _int(data, "size"), _int(data, "limit_bytes"))


def _file_reply(data: dict[str, Any]) -> FileReply:
    """A `file` event: every entry typed and bounded, the data one chunk at most."""
    error = data.get("error")
    if error is not None and error not in FILE_ERRORS:
        raise ProtocolError("file.error: unknown code")
    entries = data.get("entries", [])
    if not isinstance(entries, list) or len(entries) > MAX_DIR_ENTRIES:
        raise ProtocolError(f"file.entries: at most {MAX_DIR_ENTRIES} entries expected")
    checked = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"name", "type", "size", "mtime"}:
            raise ProtocolError("file.entries: {name, type, size, mtime} expected")
        if entry["type"] not in FILE_TYPES:
            raise ProtocolError("file.entries: unknown type")
        checked.append({"name": _str(entry, "name", MAX_PATH_CHARS), "type": entry["type"],
                        "size": _int(entry, "size"), "mtime": _int(entry, "mtime")})
    return FileReply(id=_str(data, "id", MAX_NAME_CHARS), error=error, message=_str(data, "message"),
                     entries=tuple(checked), truncated=_bool(data, "truncated"),
                     data=_str(data, "data", _CHUNK_CHARS), size=_int(data, "size"))


def decode_event(line: bytes, limits: Limits) -> Event:
    """A line the runtime sent the worker; ProtocolError unless it is a valid event within limits."""
    data = _load(line)
    kind = data.get("ev")
    if kind in ("stdout", "stderr"):
        return Output(kind, _str(data, "text", 2 * READ_SIZE + 16))
    if kind == "plot":
        return _plot(data, limits)
    if kind == "display":
        return _display(data, limits)
    if kind == "done":
        return _done(data, limits)
    if kind == "pong":
        return Pong()
    if kind == "reset":
        survivors = data.get("survivors", [])
        if not isinstance(survivors, list) or not all(isinstance(s, str) for s in survivors):
            raise ProtocolError("reset.survivors: a list of strings expected")
        return Reset(_bool(data, "ok"), tuple(s[:MAX_NAME_CHARS] for s in survivors[:20]))
    if kind == "ready":
        failed, packages = data.get("preloadFailed", {}), data.get("packages", {})
        for mapping in (failed, packages):
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise ProtocolError("ready: string maps expected")
            _json_size(mapping, 2**20)
        return Ready(_int(data, "pid"), _str(data, "python", MAX_NAME_CHARS), failed, packages)
    if kind == "fatal":
        return Fatal(_str(data, "message"))
    if kind == "file":
        return _file_reply(data)
    raise ProtocolError(f"unknown event {str(kind)[:MAX_NAME_CHARS]!r}")


def _done(data: dict[str, Any], limits: Limits) -> Done:
    status = data.get("status")
    if status not in STATUSES:
        raise ProtocolError("done.status: unknown status")
    state = data.get("state")
    if state not in (None, "kept", "lost"):
        raise ProtocolError("done.state: kept or lost expected")
    violation = data.get("violation")
    if violation is not None and not isinstance(violation, dict):
        raise ProtocolError("done.violation: an object expected")
    return Done(id=_str(data, "id", MAX_NAME_CHARS), status=status, result=_value(data, limits),
                error=_error(data), truncated=_bool(data, "truncated"), cpu_ms=_int(data, "cpu_ms"),
                peak_memory_bytes=_int(data, "peak_memory_bytes"), duration_ms=_int(data, "duration_ms"),
                disk_bytes=_int(data, "disk_bytes"), variables=_variables(data), notes=_notes(data),
                violation=_violation(violation).as_dict() if violation is not None else None,
                state=state)


def decode_kernel_message(line: bytes, limits: Limits) -> KernelMessage:
    """A line from the kernel's result pipe (user code can write there too): checked like any input."""
    data = _load(line)
    kind = data.get("kind")
    if kind == "result":
        return Result(id=_str(data, "id", MAX_NAME_CHARS), result=_value(data, limits), error=_error(data),
                      variables=_variables(data), notes=_notes(data), cpu_ms=_int(data, "cpu_ms"),
                      peak_memory_bytes=_int(data, "peak_memory_bytes"))
    if kind == "violation":
        return _violation(data)
    if kind == "started":
        return Started(_str(data, "id", MAX_NAME_CHARS))
    if kind in ("plot", "display"):
        rich = _plot(data, limits) if kind == "plot" else _display(data, limits)
        return dataclasses.replace(rich, after=_after(data))
    raise ProtocolError(f"unknown kernel message {str(kind)[:MAX_NAME_CHARS]!r}")
