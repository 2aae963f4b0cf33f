"""Statuses, the job record and the ExecutionResult, with the one place they turn into API JSON."""

from __future__ import annotations

import datetime
import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any


def iso_time(ms: int) -> str:
    """Milliseconds since the epoch as the API's ISO 8601 UTC timestamp."""
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat(timespec="milliseconds")


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

    @property
    def is_live(self) -> bool:
        return self in (SessionStatus.READY, SessionStatus.BUSY)


class EventType(enum.StrEnum):
    """Kinds of event on a job's stream (the SSE `event:` names)."""

    QUEUED = "queued"
    STARTED = "started"
    STDOUT = "stdout"
    STDERR = "stderr"
    PLOT = "plot"
    DISPLAY = "display"
    METRICS = "metrics"
    RESULT = "result"


@dataclass(frozen=True)
class ExecutionRequest:
    """What a client asked to run; stored with the job so the worker needs only the job id."""

    code: str
    timeout_ms: int
    variables: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    tenant: str = "default"
    key_id: str | None = None  # the id (core.tenants.key_id) of the API key that asked, never the key
    plot_formats: tuple[str, ...] = ("png",)
    packages: tuple[str, ...] = ()
    force_packages: bool = False
    findings: tuple[dict[str, Any], ...] = ()  # the static analysis's findings, returned with the result
    stdin: str = ""  # what input() and sys.stdin read
    # A session operation instead of code (core.session_files): {"op": "restart"} or a file operation
    # {"op": "files.list" | "files.get" | "files.put" | "files.delete", "path", ("transfer", "size")}.
    session_op: dict[str, Any] | None = None
    files: tuple[dict[str, Any], ...] = ()  # [{path, content (base64)}] written to /workspace before the code
    output_files: tuple[str, ...] = ()  # globs of /workspace files returned with the result
    # The isolation tier (core.isolation.Tier value) the API chose from the tenant (a session's job: the
    # session's). A worker runs it only on a sandbox of that tier, never another.
    isolation: str = "runc"

    @property
    def is_execution(self) -> bool:
        """Whether this request runs code (a session counts these; installs, variables, files do not)."""
        return bool(self.code.strip()) and self.session_op is None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> ExecutionRequest:
        data = json.loads(raw)
        data["plot_formats"] = tuple(data.get("plot_formats") or ("png",))
        data["packages"] = tuple(data.get("packages") or ())
        data["findings"] = tuple(data.get("findings") or ())
        data["files"] = tuple(data.get("files") or ())
        data["output_files"] = tuple(data.get("output_files") or ())
        return cls(**data)


@dataclass(frozen=True)
class Metrics:
    """Resource figures of one execution, in milliseconds and bytes."""

    queued_ms: int = 0
    duration_ms: int = 0
    cpu_ms: int = 0
    peak_memory_bytes: int = 0
    disk_bytes: int = 0


@dataclass(frozen=True)
class ExecutionResult:
    """How one execution ended: the ExecutionResult of the API."""

    job_id: str
    status: JobStatus
    session_id: str | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    plots: list[dict[str, Any]] = field(default_factory=list)
    displays: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    worker: str | None = None
    session_state: str | None = None  # "kept" | "lost" for session jobs
    packages: dict[str, Any] | None = None  # {installed: [{name, version}], failed: [{name, reason}]}
    findings: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)  # outputFiles' matches: [{path, size, content}]
    # The tier of the sandbox that ran it (set by the worker from the pool it took it from); None when no
    # sandbox ran it (cancelled while queued, refused, its worker lost before it started).
    isolation: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The camelCase JSON object the API returns."""
        return {
            "jobId": self.job_id,
            "sessionId": self.session_id,
            "status": self.status.value,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "truncated": self.truncated,
            "result": self.result,
            "error": self.error,
            "plots": self.plots,
            "displays": self.displays,
            "notes": self.notes,
            "variables": self.variables,
            "metrics": {
                "queuedMs": self.metrics.queued_ms,
                "durationMs": self.metrics.duration_ms,
                "cpuMs": self.metrics.cpu_ms,
                "peakMemoryBytes": self.metrics.peak_memory_bytes,
                "diskBytes": self.metrics.disk_bytes,
            },
            "worker": self.worker,
            "sessionState": self.session_state,
            "packages": self.packages,
            "findings": self.findings,
            "files": self.files,
            "isolation": self.isolation,
        }

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ExecutionResult:
        """Inverse of to_api (results are stored in Redis in their API form)."""
        metrics = data.get("metrics") or {}
        return cls(
            job_id=data["jobId"],
            status=JobStatus(data["status"]),
            session_id=data.get("sessionId"),
            stdout=data.get("stdout", ""),
            stderr=data.get("stderr", ""),
            truncated=bool(data.get("truncated", False)),
            result=data.get("result"),
            error=data.get("error"),
            plots=list(data.get("plots") or []),
            displays=list(data.get("displays") or []),
            notes=list(data.get("notes") or []),
            variables=dict(data.get("variables") or {}),
            metrics=Metrics(
                queued_ms=int(metrics.get("queuedMs", 0)),
                duration_ms=int(metrics.get("durationMs", 0)),
                cpu_ms=int(metrics.get("cpuMs", 0)),
                peak_memory_bytes=int(metrics.get("peakMemoryBytes", 0)),
                disk_bytes=int(metrics.get("diskBytes", 0)),
            ),
            worker=data.get("worker"),
            session_state=data.get("sessionState"),
            packages=data.get("packages"),
            findings=list(data.get("findings") or []),
            files=list(data.get("files") or []),
            isolation=data.get("isolation"),
        )
