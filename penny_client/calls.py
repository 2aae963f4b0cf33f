"""Every request of the API as a Call (method, path, body, how long the service may hold it, whether to retry).

Pure: the sync and the asyncio client send the same Calls, so the request shapes live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from penny_client.retry import IDEMPOTENT_METHODS

API = "/api/v1"
# The service answers a synchronous execution at the latest this long after the code's own timeout.
SERVICE_EXTRA_WAIT_S = 120.0
# Without a timeout the service applies its maximum, which the client does not know: wait generously.
UNKNOWN_TIMEOUT_WAIT_S = 3600.0
SESSION_CREATE_WAIT_S = 30.0
SET_VARIABLES_WAIT_S = 10.0
INSTALL_WAIT_S = 600.0


@dataclass(frozen=True)
class Call:
    """One request; `wait_s` is how long the service may legitimately hold the answer (added to read timeouts)."""

    method: str
    path: str
    body: Any = None
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    wait_s: float = 0.0
    retry: bool | None = None  # None: retry if the method is idempotent
    accept: frozenset[int] = frozenset()  # statuses >= 400 that are answers, not errors (e.g. /health's 503)
    content: bytes | None = None  # a raw body (a file upload) instead of `body` as JSON

    @property
    def retryable(self) -> bool:
        return self.retry if self.retry is not None else self.method in IDEMPOTENT_METHODS


def _segment(value: str) -> str:
    return quote(value, safe="")


def _execution_body(code: str, *, timeout_ms: int | None, variables: Mapping[str, Any] | None,
                    packages: Sequence[str] | None, session_id: str | None, strict: bool | None,
                    plot_formats: Sequence[str] | None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The body of an execution; options left at None are left to the service's defaults (extra: more
    fields, e.g. stdin, files and outputFiles from penny_client.files.execution_fields)."""
    body: dict[str, Any] = {"code": code, **(extra or {})}
    if timeout_ms is not None:
        body["timeout"] = timeout_ms
    if variables:
        body["variables"] = dict(variables)
    if packages:
        body["packages"] = list(packages)
    if session_id is not None:
        body["sessionId"] = session_id
    if strict is not None:
        body["strict"] = strict
    if plot_formats is not None:
        body["plotFormats"] = list(plot_formats)
    return body


def _execution_wait_s(timeout_ms: int | None) -> float:
    return (UNKNOWN_TIMEOUT_WAIT_S if timeout_ms is None else timeout_ms / 1000) + SERVICE_EXTRA_WAIT_S


def execute(code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
            packages: Sequence[str] | None = None, session_id: str | None = None, strict: bool | None = None,
            plot_formats: Sequence[str] | None = None, retry: bool = False,
            extra: Mapping[str, Any] | None = None) -> Call:
    """POST /execute: answered when the code has ended (or 202 with the job id after a long queue wait)."""
    return Call("POST", f"{API}/execute",
                _execution_body(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                session_id=session_id, strict=strict, plot_formats=plot_formats, extra=extra),
                wait_s=_execution_wait_s(timeout_ms), retry=retry)


def execute_stream(code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
                   packages: Sequence[str] | None = None, session_id: str | None = None,
                   strict: bool | None = None, plot_formats: Sequence[str] | None = None,
                   retry: bool = False, extra: Mapping[str, Any] | None = None) -> Call:
    """POST /execute/stream: the job's events as SSE."""
    return Call("POST", f"{API}/execute/stream",
                _execution_body(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                session_id=session_id, strict=strict, plot_formats=plot_formats, extra=extra),
                headers={"Accept": "text/event-stream"}, retry=retry)


def submit(code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
           packages: Sequence[str] | None = None, session_id: str | None = None, strict: bool | None = None,
           plot_formats: Sequence[str] | None = None, retry: bool = False,
           extra: Mapping[str, Any] | None = None) -> Call:
    """POST /jobs: 202 with the job id at once."""
    return Call("POST", f"{API}/jobs",
                _execution_body(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                session_id=session_id, strict=strict, plot_formats=plot_formats, extra=extra),
                retry=retry)


def get_job(job_id: str) -> Call:
    return Call("GET", f"{API}/jobs/{_segment(job_id)}")


def job_events(job_id: str, *, last_event_id: str | None = None) -> Call:
    """GET /jobs/{id}/events, resuming after last_event_id when given."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    return Call("GET", f"{API}/jobs/{_segment(job_id)}/events", headers=headers)


def cancel_job(job_id: str) -> Call:
    return Call("DELETE", f"{API}/jobs/{_segment(job_id)}")


def create_session(*, packages: Sequence[str] | None = None, variables: Mapping[str, Any] | None = None,
                   retry: bool = False) -> Call:
    body: dict[str, Any] = {}
    if packages:
        body["packages"] = list(packages)
    if variables:
        body["variables"] = dict(variables)
    return Call("POST", f"{API}/sessions", body, wait_s=SESSION_CREATE_WAIT_S, retry=retry)


def list_sessions() -> Call:
    return Call("GET", f"{API}/sessions")


def get_session(session_id: str) -> Call:
    return Call("GET", f"{API}/sessions/{_segment(session_id)}")


def set_variables(session_id: str, variables: Mapping[str, Any]) -> Call:
    """PUT /sessions/{id}/variables: runs in order with the session's executions, so it may wait for them."""
    return Call("PUT", f"{API}/sessions/{_segment(session_id)}/variables", {"variables": dict(variables)},
                wait_s=SET_VARIABLES_WAIT_S + SERVICE_EXTRA_WAIT_S)


def delete_session(session_id: str) -> Call:
    return Call("DELETE", f"{API}/sessions/{_segment(session_id)}")


def validate(code: str, *, strict: bool | None = None, include_warnings: bool | None = None) -> Call:
    """POST /validate: a pure check with no side effect, so it is retried like a GET."""
    body: dict[str, Any] = {"code": code}
    if strict is not None:
        body["strict"] = strict
    if include_warnings is not None:
        body["includeWarnings"] = include_warnings
    return Call("POST", f"{API}/validate", body, retry=True)


def list_packages(*, search: str | None = None, category: str | None = None) -> Call:
    params = {key: value for key, value in (("search", search), ("category", category)) if value}
    return Call("GET", f"{API}/packages", params=params or None)


def install_packages(session_id: str, packages: Sequence[str], *, force: bool = False, retry: bool = False) -> Call:
    return Call("POST", f"{API}/packages/install",
                {"sessionId": session_id, "packages": list(packages), "force": force},
                wait_s=INSTALL_WAIT_S, retry=retry)


def audit(*, tenant: str | None = None, status: str | None = None, since: str | None = None,
          until: str | None = None, limit: int | None = None, cursor: str | None = None) -> Call:
    """GET /api/v1/audit (admin key); since/until are ISO 8601 times or milliseconds since the epoch."""
    pairs = (("tenant", tenant), ("status", status), ("since", since), ("until", until),
             ("limit", str(limit) if limit is not None else None), ("cursor", cursor))
    params = {key: value for key, value in pairs if value}
    return Call("GET", f"{API}/audit", params=params or None)


def health() -> Call:
    """GET /health; its 503 (unhealthy) carries the health body, not an error envelope."""
    return Call("GET", "/health", accept=frozenset({503}))


def version() -> Call:
    """GET /api/v1/version: the service's package and API versions."""
    return Call("GET", f"{API}/version")
