"""What the service answers, as frozen dataclasses; each `from_api` is the one place its camelCase JSON is read.

Readers are lenient about what they do not know (a newer server may add fields), strict about what they need.
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from penny_client.files import OutputFile, output_files


class JobStatus(enum.StrEnum):
    """Where a job is; the values are the API strings."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    OUTPUT_LIMIT = "output_limit"
    POLICY_VIOLATION = "policy_violation"
    CANCELLED = "cancelled"
    WORKER_LOST = "worker_lost"

    @property
    def is_final(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


class SessionStatus(enum.StrEnum):
    """Where a session is; the values are the API strings."""

    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    LOST = "lost"
    EXPIRED = "expired"


def int_or_none(value: Any) -> int | None:
    """An optional integer field."""
    return None if value is None else int(value)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Value:
    """An object as a notebook shows it: its type name and repr, plus the richer representations it offers.

    A trailing expression's value (`ExecutionResult.result`) and each `display(obj)` (`ExecutionResult.displays`,
    `DisplayEvent`) have this shape. `html` is what `_repr_html_` gave (a pandas DataFrame's table), `json` what
    `_repr_json_` gave; `png` and `svg` (base64) are only on a value whose object renders itself as an image.
    """

    type: str
    repr: str
    html: str | None = None
    json: Any = None
    png: str | None = None
    svg: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Value:
        def text(key: str) -> str | None:
            return None if data.get(key) is None else str(data[key])

        return cls(type=str(data["type"]), repr=str(data["repr"]), html=text("html"), json=data.get("json"),
                   png=text("png"), svg=text("svg"))


@dataclass(frozen=True)
class ErrorInfo:
    """The exception the user's code raised (or why the run ended), traceback trimmed to the user's frames."""

    type: str
    message: str
    traceback: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ErrorInfo:
        return cls(type=str(data["type"]), message=str(data.get("message", "")),
                   traceback=tuple(str(line) for line in data.get("traceback") or ()))

    def format(self) -> str:
        """The error as Python prints it: the traceback, or `Type: message` when there is none."""
        if self.traceback:
            return "\n".join(self.traceback)
        return f"{self.type}: {self.message}" if self.message else self.type


_EXTENSIONS = {"png": "png", "svg": "svg", "plotly": "json"}


@dataclass(frozen=True)
class Plot:
    """A figure the code produced: png and svg are base64 in `data`, plotly is its JSON figure."""

    format: str
    data: Any
    width: int | None = None
    height: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Plot:
        return cls(format=str(data["format"]), data=data.get("data"),
                   width=int_or_none(data.get("width")), height=int_or_none(data.get("height")))

    @property
    def extension(self) -> str:
        """The file extension its bytes are saved under (png, svg, json)."""
        return _EXTENSIONS.get(self.format, "bin")

    def png_bytes(self) -> bytes:
        """The PNG image; ValueError if the plot is not a PNG."""
        if self.format != "png":
            raise ValueError(f"this plot is {self.format}, not png")
        return self.to_bytes()

    def to_bytes(self) -> bytes:
        """The file contents: decoded PNG or SVG, or the plotly figure as UTF-8 JSON."""
        if self.format in ("png", "svg"):
            return base64.b64decode(str(self.data), validate=True)
        if isinstance(self.data, str):
            return self.data.encode()
        return json.dumps(self.data).encode()

    def save(self, path: str | Path) -> Path:
        """Write the plot's file to path (parents created); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.to_bytes())
        return target


@dataclass(frozen=True)
class Variable:
    """A summary of one variable of the user's namespace (never the value itself)."""

    type: str
    repr: str
    size_bytes: int | None = None
    length: int | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    columns: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Variable:
        known = {"type", "repr", "size", "len", "shape", "dtype", "columns"}
        shape, columns = data.get("shape"), data.get("columns")
        return cls(type=str(data.get("type", "")), repr=str(data.get("repr", "")),
                   size_bytes=int_or_none(data.get("size")), length=int_or_none(data.get("len")),
                   shape=tuple(int(n) for n in shape) if isinstance(shape, list) else None,
                   dtype=None if data.get("dtype") is None else str(data["dtype"]),
                   columns=tuple(str(c) for c in columns) if isinstance(columns, list) else None,
                   extra={k: v for k, v in data.items() if k not in known})


def _variables(data: Any) -> dict[str, Variable]:
    return {str(name): Variable.from_api(info) for name, info in (data or {}).items() if isinstance(info, dict)}


@dataclass(frozen=True)
class Metrics:
    """Resource figures of one execution, in milliseconds and bytes."""

    queued_ms: int = 0
    duration_ms: int = 0
    cpu_ms: int = 0
    peak_memory_bytes: int = 0
    disk_bytes: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Metrics:
        return cls(queued_ms=int(data.get("queuedMs", 0)), duration_ms=int(data.get("durationMs", 0)),
                   cpu_ms=int(data.get("cpuMs", 0)), peak_memory_bytes=int(data.get("peakMemoryBytes", 0)),
                   disk_bytes=int_or_none(data.get("diskBytes")))


@dataclass(frozen=True)
class ExecutionResult:
    """How one execution ended. A failing user's code is a result too: look at `status` and `error`.

    `displays` are the `display(obj)` calls that gave no image (images are `plots`); `notes` say what the
    service dropped (a plot over its size bound, a value's rich representation); `packages` is the install
    report of a run that asked for packages (None otherwise); `findings` are the policy check's. `isolation`
    is the tier whose sandbox ran it: "runc" (the host's kernel) or "gvisor" (gVisor's); None if none did.
    """

    job_id: str
    status: JobStatus
    session_id: str | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    result: Value | None = None
    error: ErrorInfo | None = None
    plots: tuple[Plot, ...] = ()
    displays: tuple[Value, ...] = ()
    notes: tuple[str, ...] = ()
    variables: Mapping[str, Variable] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    worker: str | None = None
    session_state: str | None = None
    packages: InstallReport | None = None
    findings: tuple[Issue, ...] = ()
    files: tuple[OutputFile, ...] = ()  # what its outputFiles matched (path and bytes)
    isolation: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ExecutionResult:
        return cls(
            job_id=str(data["jobId"]),
            status=JobStatus(data["status"]),
            session_id=data.get("sessionId"),
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            truncated=bool(data.get("truncated", False)),
            result=Value.from_api(data["result"]) if data.get("result") else None,
            error=ErrorInfo.from_api(data["error"]) if data.get("error") else None,
            plots=tuple(Plot.from_api(plot) for plot in data.get("plots") or ()),
            displays=tuple(Value.from_api(item) for item in data.get("displays") or () if isinstance(item, dict)),
            notes=tuple(str(note) for note in data.get("notes") or ()),
            variables=_variables(data.get("variables")),
            metrics=Metrics.from_api(data.get("metrics") or {}),
            worker=data.get("worker"),
            session_state=data.get("sessionState"),
            packages=InstallReport.from_api(data["packages"]) if isinstance(data.get("packages"), dict) else None,
            findings=_issues(data.get("findings")),
            files=output_files(data),
            isolation=_str_or_none(data.get("isolation")),
            raw=dict(data),
        )

    @property
    def ok(self) -> bool:
        """True when the code ran to its end without raising."""
        return self.status is JobStatus.SUCCESS

    def to_api(self) -> dict[str, Any]:
        """The result as the service sent it (camelCase JSON)."""
        return dict(self.raw)


@dataclass(frozen=True)
class JobInfo:
    """GET /jobs/{id}: where a job is, and its result once final."""

    job_id: str
    status: JobStatus
    worker: str | None = None
    result: ExecutionResult | None = None
    isolation: str | None = None  # the result's tier once it ended

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> JobInfo:
        return cls(job_id=str(data["jobId"]), status=JobStatus(data["status"]), worker=data.get("worker"),
                   result=ExecutionResult.from_api(data["result"]) if data.get("result") else None,
                   isolation=_str_or_none(data.get("isolation")))


@dataclass(frozen=True)
class Resources:
    """A session's current resource use (None until first sampled)."""

    memory_bytes: int | None = None
    cpu_percent: float | None = None
    disk_bytes: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Resources:
        cpu = data.get("cpuPercent")
        return cls(memory_bytes=int_or_none(data.get("memoryBytes")), cpu_percent=None if cpu is None else float(cpu),
                   disk_bytes=int_or_none(data.get("diskBytes")))


@dataclass(frozen=True)
class SessionInfo:
    """A session as the service describes it (creation answers only some of the fields)."""

    session_id: str
    status: SessionStatus | None = None
    worker: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    execution_count: int = 0
    variables: Mapping[str, Variable] = field(default_factory=dict)
    packages: tuple[str, ...] = ()
    resources: Resources = field(default_factory=Resources)
    isolation: str | None = None  # the tier of its sandbox: "runc" or "gvisor"
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SessionInfo:
        return cls(
            session_id=str(data["sessionId"]),
            status=SessionStatus(data["status"]) if data.get("status") else None,
            worker=data.get("worker"),
            created_at=_time(data.get("createdAt")),
            last_used_at=_time(data.get("lastUsedAt")),
            expires_at=_time(data.get("expiresAt")),
            execution_count=int(data.get("executionCount", 0)),
            variables=_variables(data.get("variables")),
            packages=tuple(str(p) for p in data.get("packages") or ()),
            resources=Resources.from_api(data.get("resources") or {}),
            isolation=_str_or_none(data.get("isolation")),
            raw=dict(data),
        )

    def to_api(self) -> dict[str, Any]:
        """The session as the service sent it (camelCase JSON)."""
        return dict(self.raw)


@dataclass(frozen=True)
class Health:
    """GET /health: `healthy`, `degraded` (no idle sandbox) or `unhealthy` (no worker, or Redis down)."""

    status: str
    uptime_s: int | None = None
    workers: tuple[Mapping[str, Any], ...] = ()
    queue_depth: int | None = None
    version: str | None = None
    api_version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Health:
        queue = data.get("queue") or {}
        return cls(status=str(data.get("status", "unknown")), uptime_s=int_or_none(data.get("uptime")),
                   workers=tuple(w for w in data.get("workers") or () if isinstance(w, dict)),
                   queue_depth=int_or_none(queue.get("depth")),
                   version=None if data.get("version") is None else str(data["version"]),
                   api_version=None if data.get("apiVersion") is None else str(data["apiVersion"]), raw=dict(data))

    @property
    def ok(self) -> bool:
        """True when the service can run code now (healthy or degraded)."""
        return self.status in ("healthy", "degraded")

    def to_api(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class ServerVersion:
    """GET /api/v1/version: the service's package version (PEP 440) and the version of its API contract."""

    version: str
    api_version: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ServerVersion:
        return cls(version=str(data["version"]), api_version=str(data["apiVersion"]))


@dataclass(frozen=True)
class Issue:
    """One finding of the policy check, at a 1-based line and 0-based column.

    From POST /validate (its `errors` and `warnings`) and in `ExecutionResult.findings`: there the static
    check's findings come first (severity None: the result does not say whether each was an error or a
    warning), then the violation the sandbox's run-time layer stopped, if any (`source` "runtime", severity
    "error", `target` what the code reached for, no position).
    """

    line: int | None
    col: int | None
    rule: str
    message: str
    severity: str | None = None
    source: str | None = None
    target: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Issue:
        def text(key: str) -> str | None:
            return None if data.get(key) is None else str(data[key])

        return cls(line=int_or_none(data.get("line")), col=int_or_none(data.get("col")),
                   rule=str(data.get("rule", "")), message=str(data.get("message", "")),
                   severity=text("severity"), source=text("source"), target=text("target"))


def _issues(items: Any) -> tuple[Issue, ...]:
    return tuple(Issue.from_api(item) for item in items or () if isinstance(item, dict))


@dataclass(frozen=True)
class ValidationReport:
    """POST /validate: whether the policy check would let the code run, and why not."""

    valid: bool
    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ValidationReport:
        return cls(valid=bool(data["valid"]), errors=_issues(data.get("errors")),
                   warnings=_issues(data.get("warnings")), raw=dict(data))

    def to_api(self) -> dict[str, Any]:
        return dict(self.raw)


@dataclass(frozen=True)
class PackageInfo:
    """A package the sandbox offers."""

    name: str
    version: str | None = None
    category: str | None = None
    description: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PackageInfo:
        return cls(name=str(data["name"]), version=data.get("version"), category=data.get("category"),
                   description=data.get("description"), raw=dict(data))

    def to_api(self) -> dict[str, Any]:
        """The entry as the service sent it (also fields this client does not know)."""
        return dict(self.raw)


@dataclass(frozen=True)
class InstalledPackage:
    name: str
    version: str | None = None


@dataclass(frozen=True)
class FailedPackage:
    name: str
    reason: str = ""


@dataclass(frozen=True)
class InstallReport:
    """POST /packages/install: what was installed into the session and what was not, and why."""

    installed: tuple[InstalledPackage, ...] = ()
    failed: tuple[FailedPackage, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> InstallReport:
        return cls(installed=tuple(InstalledPackage(name=str(p["name"]), version=p.get("version"))
                                   for p in data.get("installed") or ()),
                   failed=tuple(FailedPackage(name=str(p["name"]), reason=str(p.get("reason", "")))
                                for p in data.get("failed") or ()))

    @property
    def ok(self) -> bool:
        return not self.failed
