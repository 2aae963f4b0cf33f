"""Python client of PENNY Sandbox: `SandboxClient` (sync), `AsyncSandboxClient` (asyncio), and the `penny` CLI."""

from __future__ import annotations

from penny_client.aio import AsyncEventStream, AsyncJob, AsyncSandboxClient, AsyncSession
from penny_client.client import SandboxClient
from penny_client.errors import (
    ApiError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InternalError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PennyClientError,
    PolicyViolation,
    RequestError,
    ServiceError,
    Unauthorized,
    Unavailable,
    Unsupported,
    UnsupportedMediaType,
    ValidationError,
)
from penny_client.events import (
    DisplayEvent,
    Event,
    MetricsEvent,
    PlotEvent,
    QueuedEvent,
    ResultEvent,
    StartedEvent,
    StderrEvent,
    StdoutEvent,
    UnknownEvent,
)
from penny_client.job import Job
from penny_client.models import (
    ErrorInfo,
    ExecutionResult,
    Health,
    InstallReport,
    Issue,
    JobInfo,
    JobStatus,
    PackageInfo,
    Plot,
    ServerVersion,
    SessionInfo,
    SessionStatus,
    ValidationReport,
    Value,
    Variable,
)
from penny_client.retry import RetryPolicy
from penny_client.session import Session
from penny_client.stream import EventStream
from penny_client.version import VERSION as __version__

__all__ = [
    "ApiError", "AsyncEventStream", "AsyncJob", "AsyncSandboxClient", "AsyncSession", "Conflict", "Forbidden",
    "ConnectionFailed", "ErrorInfo", "Event", "EventStream", "ExecutionResult", "Health", "InstallReport",
    "InternalError", "Job", "JobInfo", "JobStatus", "MetricsEvent", "NotFound", "Overloaded", "PackageInfo",
    "PayloadTooLarge", "PennyClientError", "Plot", "PlotEvent", "PolicyViolation", "QueuedEvent", "RequestError",
    "ResultEvent", "RetryPolicy", "SandboxClient", "ServiceError", "Session", "SessionInfo", "SessionStatus",
    "StartedEvent", "StderrEvent", "StdoutEvent", "Unauthorized", "Unavailable", "UnknownEvent", "Unsupported",
    "UnsupportedMediaType", "ValidationError", "ValidationReport", "Value", "Variable",
]
__all__ += ["DisplayEvent", "Issue", "ServerVersion", "__version__"]  # API v1 parity
