"""SandboxClient: the PENNY Sandbox API over HTTP (httpx), with typed answers, typed errors and retries."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from penny_client import calls
from penny_client.errors import ConnectionFailed, error_from_response
from penny_client.files import FileSource, execution_fields
from penny_client.job import Job
from penny_client.models import (
    ExecutionResult,
    Health,
    InstallReport,
    JobInfo,
    PackageInfo,
    ServerVersion,
    SessionInfo,
    ValidationReport,
    Variable,
)
from penny_client.retry import RetryPolicy
from penny_client.session import Session
from penny_client.stream import EventStream, StreamCursor
from penny_client.version import VERSION

DEFAULT_URL = "http://localhost:3003"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RECONNECTS = 5
DEFAULT_RETRIES = RetryPolicy()
# A stream is idle between events; the service sends a keepalive every 15 s, so a read may wait that long.
STREAM_READ_TIMEOUT_S = 60.0
USER_AGENT = f"penny-client/{VERSION}"


def base_headers(api_key: str | None) -> dict[str, str]:
    """Headers of every request: the API key as a bearer token, when there is one."""
    headers = {"User-Agent": USER_AGENT}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def http_timeout(timeout_s: float, call: calls.Call, *, stream: bool = False) -> httpx.Timeout:
    """Connect within timeout_s; each read may also wait as long as the service may hold the answer."""
    read_s = max(timeout_s, STREAM_READ_TIMEOUT_S) if stream else timeout_s + call.wait_s
    return httpx.Timeout(timeout_s, read=read_s)


def retry_delay_s(policy: RetryPolicy, call: calls.Call, retry_number: int, *, status: int | None,
                  retry_after_s: float | None) -> float | None:
    """Seconds to wait before retrying `call` after a failure (status None: no answer), or None: give up."""
    if not call.retryable or not policy.allows(retry_number):
        return None
    if status is not None and status not in (429, 503):
        return None
    return policy.delay_s(retry_number, retry_after_s=retry_after_s)


def decode_health(response: httpx.Response) -> Health:
    """The health body, also from a 503 (unhealthy) as long as it is one."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or "status" not in data:
        raise error_from_response(response.status_code, response.content, response.headers)
    return Health.from_api(data)


class SandboxClient:
    """A client of one PENNY Sandbox service; use it as a context manager or call close().

    `timeout_s` bounds connecting and each read; calls that wait for code to finish add the code's timeout.
    `retries` governs idempotent calls (and calls made with retry=True) on 429, 503 and connection errors;
    `reconnects` is how often in a row a broken event stream is resumed without receiving an event.
    """

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: RetryPolicy | int = DEFAULT_RETRIES,
                 reconnects: int = DEFAULT_RECONNECTS, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries if isinstance(retries, RetryPolicy) else RetryPolicy(max_retries=retries)
        self._reconnect_policy = dataclasses.replace(self.retries, max_retries=reconnects)
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=base_headers(api_key), transport=transport,
                                  timeout=httpx.Timeout(timeout_s))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- plumbing

    def send(self, call: calls.Call, *, stream: bool = False) -> httpx.Response:
        """Send a call, retrying as its policy allows; the response (< 400 or accepted) or the mapped exception."""
        request = self._http.build_request(call.method, call.path, json=call.body if call.content is None else None,
                                           content=call.content, params=call.params,
                                           headers=dict(call.headers),
                                           timeout=http_timeout(self.timeout_s, call, stream=stream))
        retry_number = 0
        while True:
            retry_number += 1
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay_s = retry_delay_s(self.retries, call, retry_number, status=None, retry_after_s=None)
                if delay_s is None:
                    raise ConnectionFailed(f"{call.method} {self.base_url}{call.path}: "
                                           f"{type(exc).__name__}: {exc}") from exc
                self._sleep(delay_s)
                continue
            if response.status_code < 400 or response.status_code in call.accept:
                return response
            if stream:
                response.read()
                response.close()
            error = error_from_response(response.status_code, response.content, response.headers)
            delay_s = retry_delay_s(self.retries, call, retry_number, status=response.status_code,
                                    retry_after_s=error.retry_after_s)
            if delay_s is None:
                raise error
            self._sleep(delay_s)

    def _json(self, call: calls.Call) -> Any:
        return self.send(call).json()

    def _stream(self, call: calls.Call, cursor: StreamCursor) -> EventStream:
        return EventStream(self.send(call, stream=True), cursor=cursor,
                           reopen=lambda resume: self.send(resume, stream=True),
                           policy=self._reconnect_policy, sleep=self._sleep,
                           final_result=lambda job_id: self.job_info(job_id).result)

    # -- executions and jobs

    def execute(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
                packages: Sequence[str] | None = None, session_id: str | None = None, strict: bool | None = None,
                plot_formats: Sequence[str] | None = None, retry: bool = False, stdin: str | None = None,
                files: Mapping[str, FileSource] | None = None,
                output_files: Sequence[str] | None = None) -> ExecutionResult:
        """Run code and return its ExecutionResult once it ended (a failing code is a result, not an error).

        `packages` are installed for this run (or into the session); `strict=True` refuses code the policy
        check finds errors in (PolicyViolation) instead of running it; `plot_formats` is ["png"] by default,
        ["svg"] or ["png", "svg"] on request. `stdin` is what input() reads; `files` ({path under /workspace:
        bytes, text or a local Path}) are written before the code; `output_files` are globs ("*.csv",
        "out/**") whose files come back in `result.files`.
        """
        response = self.send(calls.execute(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                           session_id=session_id, strict=strict, plot_formats=plot_formats,
                                           retry=retry, extra=execution_fields(stdin=stdin, files=files,
                                                                              output_files=output_files)))
        data = response.json()
        if response.status_code == 202:  # queued past the service's wait: follow the job to its end
            return Job(self, str(data["jobId"])).wait()
        return ExecutionResult.from_api(data)

    def execute_stream(self, code: str, *, timeout_ms: int | None = None,
                       variables: Mapping[str, Any] | None = None, packages: Sequence[str] | None = None,
                       session_id: str | None = None, strict: bool | None = None,
                       plot_formats: Sequence[str] | None = None, retry: bool = False, stdin: str | None = None,
                       files: Mapping[str, FileSource] | None = None,
                       output_files: Sequence[str] | None = None) -> EventStream:
        """Run code; its events as they happen (queued, started, stdout, stderr, plot, display, metrics, result)."""
        return self._stream(calls.execute_stream(code, timeout_ms=timeout_ms, variables=variables,
                                                 packages=packages, session_id=session_id, strict=strict,
                                                 plot_formats=plot_formats, retry=retry,
                                                 extra=execution_fields(stdin=stdin, files=files,
                                                                        output_files=output_files)),
                            StreamCursor())

    def submit(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
               packages: Sequence[str] | None = None, session_id: str | None = None, strict: bool | None = None,
               plot_formats: Sequence[str] | None = None, retry: bool = False, stdin: str | None = None,
               files: Mapping[str, FileSource] | None = None, output_files: Sequence[str] | None = None) -> Job:
        """Queue code and return at once: a Job to wait for, follow or cancel (stdin, files: as execute)."""
        data = self._json(calls.submit(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                       session_id=session_id, strict=strict, plot_formats=plot_formats,
                                       retry=retry, extra=execution_fields(stdin=stdin, files=files,
                                                                          output_files=output_files)))
        return Job(self, str(data["jobId"]))

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (no request is made)."""
        return Job(self, job_id)

    def job_info(self, job_id: str) -> JobInfo:
        """Where the job is, and its result once final."""
        return JobInfo.from_api(self._json(calls.get_job(job_id)))

    def job_events(self, job_id: str, *, last_event_id: str | None = None) -> EventStream:
        """The job's events from the start, or after last_event_id."""
        return self._stream(calls.job_events(job_id, last_event_id=last_event_id),
                            StreamCursor(job_id=job_id, last_event_id=last_event_id))

    def cancel_job(self, job_id: str) -> str:
        """Cancel a job; its status then (`cancelled`, or `running` while the kill is on its way)."""
        return str(self._json(calls.cancel_job(job_id))["status"])

    # -- sessions

    def session(self, *, packages: Sequence[str] | None = None, variables: Mapping[str, Any] | None = None,
                retry: bool = False) -> Session:
        """Create a session; use it as a context manager to delete it on exit."""
        data = self._json(calls.create_session(packages=packages, variables=variables, retry=retry))
        return Session(self, SessionInfo.from_api(data))

    def attach_session(self, session_id: str) -> Session:
        """A handle on an existing session (no request is made)."""
        return Session(self, SessionInfo(session_id=session_id))

    def sessions(self) -> list[SessionInfo]:
        """The caller's sessions."""
        return [SessionInfo.from_api(item) for item in self._json(calls.list_sessions())["sessions"]]

    def session_info(self, session_id: str) -> SessionInfo:
        """A session's status, timestamps, execution count, variables and resource use."""
        return SessionInfo.from_api(self._json(calls.get_session(session_id)))

    def set_session_variables(self, session_id: str, variables: Mapping[str, Any]) -> dict[str, Variable]:
        """Set JSON values in the session's namespace; the summary of its variables afterwards."""
        data = self._json(calls.set_variables(session_id, variables))
        return {name: Variable.from_api(info) for name, info in (data.get("variables") or {}).items()}

    def delete_session(self, session_id: str) -> None:
        """Delete a session; its sandbox is destroyed at once."""
        self.send(calls.delete_session(session_id))

    def install_packages(self, session_id: str, packages: Sequence[str], *, force: bool = False,
                         retry: bool = False) -> InstallReport:
        """Install packages into a session."""
        return InstallReport.from_api(self._json(calls.install_packages(session_id, packages, force=force,
                                                                        retry=retry)))

    # -- checks and catalogue

    def validate(self, code: str, *, strict: bool | None = None,
                 include_warnings: bool | None = None) -> ValidationReport:
        """Whether the policy check lets the code run, with the findings (nothing is run)."""
        return ValidationReport.from_api(self._json(calls.validate(code, strict=strict,
                                                                   include_warnings=include_warnings)))

    def packages(self, *, search: str | None = None, category: str | None = None) -> list[PackageInfo]:
        """The packages the sandbox offers, filtered by a search string and a category."""
        data = self._json(calls.list_packages(search=search, category=category))
        return [PackageInfo.from_api(item) for item in data["packages"]]

    def audit(self, **filters: Any) -> dict[str, Any]:
        """A page of the audit trail (admin key): {records, count, nextCursor}; filters as calls.audit."""
        return self._json(calls.audit(**filters))

    def health(self) -> Health:
        """The service's health (also when it is unhealthy and answers 503)."""
        return decode_health(self.send(calls.health()))

    def version(self) -> ServerVersion:
        """The service's package version and API version."""
        return ServerVersion.from_api(self._json(calls.version()))
