"""The events of a job's stream, typed; `event_from_sse` is the one place an SSE event's JSON is read.

Every event carries its stream id (`id`), which is also the Last-Event-ID to resume after it, and its JSON
data as sent (`raw`, not compared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from penny_client.models import ExecutionResult, Plot, Value, int_or_none


@dataclass(frozen=True)
class Event:
    """One event of a job's stream; `type` is its SSE event name."""

    type: ClassVar[str] = ""
    id: str
    raw: Any = field(default=None, kw_only=True, repr=False, compare=False)


@dataclass(frozen=True)
class QueuedEvent(Event):
    type: ClassVar[str] = "queued"
    job_id: str
    status: str = "queued"


@dataclass(frozen=True)
class StartedEvent(Event):
    type: ClassVar[str] = "started"
    job_id: str
    worker: str | None = None


@dataclass(frozen=True)
class StdoutEvent(Event):
    type: ClassVar[str] = "stdout"
    text: str


@dataclass(frozen=True)
class StderrEvent(Event):
    type: ClassVar[str] = "stderr"
    text: str


@dataclass(frozen=True)
class PlotEvent(Event):
    type: ClassVar[str] = "plot"
    plot: Plot


@dataclass(frozen=True)
class DisplayEvent(Event):
    """A `display(obj)` that gave no image (an image is a PlotEvent): its repr, and html or json if offered."""

    type: ClassVar[str] = "display"
    display: Value


@dataclass(frozen=True)
class MetricsEvent(Event):
    """A live resource sample while the code runs (bytes, percent of one core, ms since start)."""

    type: ClassVar[str] = "metrics"
    elapsed_ms: int | None = None
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    disk_bytes: int | None = None


@dataclass(frozen=True)
class ResultEvent(Event):
    type: ClassVar[str] = "result"
    result: ExecutionResult


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An event this client version does not know (kept, not dropped, so nothing is silently lost)."""

    name: str
    data: Any = None

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.name


def event_from_sse(event_id: str, name: str, data: Any) -> Event:
    """The typed event for an SSE event `name` with JSON `data`."""
    if name == "queued":
        return QueuedEvent(id=event_id, job_id=str(data["jobId"]), status=str(data.get("status", "queued")), raw=data)
    if name == "started":
        return StartedEvent(id=event_id, job_id=str(data.get("jobId", "")), worker=data.get("worker"), raw=data)
    if name == "stdout":
        return StdoutEvent(id=event_id, text=str(data["text"]), raw=data)
    if name == "stderr":
        return StderrEvent(id=event_id, text=str(data["text"]), raw=data)
    if name == "plot":
        return PlotEvent(id=event_id, plot=Plot.from_api(data), raw=data)
    if name == "display":
        return DisplayEvent(id=event_id, display=Value.from_api(data), raw=data)
    if name == "metrics":
        cpu = data.get("cpuPercent")
        return MetricsEvent(id=event_id, elapsed_ms=int_or_none(data.get("elapsedMs")),
                            cpu_percent=None if cpu is None else float(cpu),
                            memory_bytes=int_or_none(data.get("memoryBytes")),
                            disk_bytes=int_or_none(data.get("diskBytes")), raw=data)
    if name == "result":
        return ResultEvent(id=event_id, result=ExecutionResult.from_api(data), raw=data)
    return UnknownEvent(id=event_id, name=name, data=data, raw=data)
