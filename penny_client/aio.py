"""AsyncSandboxClient: the asyncio twin of SandboxClient, sending the same Calls over httpx.AsyncClient."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from penny_client import calls
from penny_client.client import (
    DEFAULT_RECONNECTS,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    DEFAULT_URL,
    base_headers,
    decode_health,
    http_timeout,
    retry_delay_s,
)
from penny_client.errors import ConnectionFailed, NotFound, PennyClientError, error_from_response
from penny_client.events import Event
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
from penny_client.sse import SSEParser
from penny_client.stream import DROPPED, CursorView, StreamCursor

log = logging.getLogger(__name__)


class AsyncEventStream(CursorView, AsyncIterator[Event]):
    """`async for event in stream`: the job's events in order, resumed with Last-Event-ID after a drop."""

    def __init__(self, response: httpx.Response, *, cursor: StreamCursor,
                 reopen: Callable[[calls.Call], Awaitable[httpx.Response]], policy: RetryPolicy,
                 sleep: Callable[[float], Awaitable[None]],
                 final_result: Callable[[str], Awaitable[ExecutionResult | None]] | None = None) -> None:
        self._response: httpx.Response | None = response
        self._cursor = cursor
        self._reopen = reopen
        self._policy = policy
        self._sleep = sleep
        self._final_result = final_result
        self._events = self._run()

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def until_result(self) -> ExecutionResult:
        """Consume the remaining events; the ExecutionResult."""
        async for _ in self:
            pass
        if self._cursor.result is None:  # pragma: no cover - _run ends only with a result or an exception
            raise ConnectionFailed("the stream ended without a result")
        return self._cursor.result

    async def aclose(self) -> None:
        await self._events.aclose()
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def _job_ended(self) -> bool:
        """As EventStream._job_ended: after an empty stream, the job's result from GET /jobs/{id} if it ended."""
        if self._final_result is None or self._cursor.job_id is None:
            return False
        self._cursor.result = await self._final_result(self._cursor.job_id)
        return self._cursor.result is not None

    async def _run(self) -> AsyncGenerator[Event, None]:
        drops = 0
        while True:
            response = self._response
            assert response is not None
            parser = SSEParser()
            delivered = False
            try:
                async for chunk in response.aiter_bytes():
                    for sse in parser.feed(chunk):
                        event = self._cursor.accept(sse)
                        if event is None:
                            continue
                        drops = 0
                        delivered = True
                        yield event
                        if self._cursor.done:
                            return
                if not delivered and await self._job_ended():
                    return
                cause: Exception = ConnectionFailed("the stream ended before the result")
            except DROPPED as exc:
                cause = exc
            finally:
                await response.aclose()
                self._response = None
            drops += 1
            if not self._policy.allows(drops):
                raise ConnectionFailed(f"the stream of job {self._cursor.job_id} broke {drops} times in a row "
                                       f"without progress: {cause}") from cause
            if drops > 1:
                await self._sleep(self._policy.delay_s(drops - 1))
            self._response = await self._reopen(self._cursor.resume_call())


class AsyncJob:
    """An execution submitted with AsyncSandboxClient.submit."""

    def __init__(self, client: AsyncSandboxClient, job_id: str) -> None:
        self._client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"AsyncJob({self.id!r})"

    async def info(self) -> JobInfo:
        return await self._client.job_info(self.id)

    async def events(self, *, last_event_id: str | None = None) -> AsyncEventStream:
        return await self._client.job_events(self.id, last_event_id=last_event_id)

    async def wait(self) -> ExecutionResult:
        """Until the job ended; its ExecutionResult."""
        async with await self.events() as events:
            return await events.until_result()

    async def cancel(self) -> str:
        return await self._client.cancel_job(self.id)


class AsyncSession:
    """`async with client.session() as s: await s.run("x = 1")`; deleted on exit."""

    def __init__(self, client: AsyncSandboxClient, info: SessionInfo) -> None:
        self._client = client
        self.id = info.session_id
        self.created = info

    def __repr__(self) -> str:
        return f"AsyncSession({self.id!r})"

    @property
    def isolation(self) -> str | None:
        """The isolation tier of the session's sandbox ("runc" or "gvisor"), as its creation answered."""
        return self.created.isolation

    async def run(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
                  packages: Sequence[str] | None = None, strict: bool | None = None,
                  plot_formats: Sequence[str] | None = None) -> ExecutionResult:
        return await self._client.execute(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                          strict=strict, plot_formats=plot_formats, session_id=self.id)

    async def stream(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
                     packages: Sequence[str] | None = None, strict: bool | None = None,
                     plot_formats: Sequence[str] | None = None) -> AsyncEventStream:
        return await self._client.execute_stream(code, timeout_ms=timeout_ms, variables=variables,
                                                 packages=packages, strict=strict, plot_formats=plot_formats,
                                                 session_id=self.id)

    async def submit(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
                     packages: Sequence[str] | None = None, strict: bool | None = None,
                     plot_formats: Sequence[str] | None = None) -> AsyncJob:
        return await self._client.submit(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                         strict=strict, plot_formats=plot_formats, session_id=self.id)

    async def info(self) -> SessionInfo:
        return await self._client.session_info(self.id)

    async def variables(self) -> Mapping[str, Variable]:
        return (await self.info()).variables

    async def set_variables(self, values: Mapping[str, Any] | None = None, /, **named: Any) -> dict[str, Variable]:
        return await self._client.set_session_variables(self.id, {**(values or {}), **named})

    async def install(self, *packages: str, force: bool = False) -> InstallReport:
        return await self._client.install_packages(self.id, list(packages), force=force)

    async def delete(self) -> None:
        await self._client.delete_session(self.id)

    async def close(self) -> None:
        """Delete the session if it still exists; never raises (failures are logged)."""
        try:
            await self.delete()
        except NotFound:
            pass
        except PennyClientError as exc:
            log.warning("session %s could not be deleted: %s", self.id, exc)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


class SessionCreation:
    """What AsyncSandboxClient.session returns: await it for the session, or `async with` it to delete on exit."""

    def __init__(self, create: Callable[[], Awaitable[AsyncSession]]) -> None:
        self._create = create
        self._session: AsyncSession | None = None

    def __await__(self) -> Generator[Any, None, AsyncSession]:
        return self._create().__await__()

    async def __aenter__(self) -> AsyncSession:
        self._session = await self._create()
        return self._session

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()


class AsyncSandboxClient:
    """The asyncio client; same arguments, methods and answers as SandboxClient, awaited."""

    def __init__(self, base_url: str = DEFAULT_URL, api_key: str | None = None, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: RetryPolicy | int = DEFAULT_RETRIES,
                 reconnects: int = DEFAULT_RECONNECTS, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries if isinstance(retries, RetryPolicy) else RetryPolicy(max_retries=retries)
        self._reconnect_policy = dataclasses.replace(self.retries, max_retries=reconnects)
        self._sleep = sleep
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=base_headers(api_key), transport=transport,
                                       timeout=httpx.Timeout(timeout_s))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSandboxClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def send(self, call: calls.Call, *, stream: bool = False) -> httpx.Response:
        """Send a call, retrying as its policy allows; the response or the mapped exception."""
        request = self._http.build_request(call.method, call.path, json=call.body if call.content is None else None,
                                           content=call.content, params=call.params,
                                           headers=dict(call.headers),
                                           timeout=http_timeout(self.timeout_s, call, stream=stream))
        retry_number = 0
        while True:
            retry_number += 1
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                delay_s = retry_delay_s(self.retries, call, retry_number, status=None, retry_after_s=None)
                if delay_s is None:
                    raise ConnectionFailed(f"{call.method} {self.base_url}{call.path}: "
                                           f"{type(exc).__name__}: {exc}") from exc
                await self._sleep(delay_s)
                continue
            if response.status_code < 400 or response.status_code in call.accept:
                return response
            if stream:
                await response.aread()
                await response.aclose()
            error = error_from_response(response.status_code, response.content, response.headers)
            delay_s = retry_delay_s(self.retries, call, retry_number, status=response.status_code,
                                    retry_after_s=error.retry_after_s)
            if delay_s is None:
                raise error
            await self._sleep(delay_s)

    async def _json(self, call: calls.Call) -> Any:
        return (await self.send(call)).json()

    async def _stream(self, call: calls.Call, cursor: StreamCursor) -> AsyncEventStream:
        async def reopen(resume: calls.Call) -> httpx.Response:
            return await self.send(resume, stream=True)

        async def final_result(job_id: str) -> ExecutionResult | None:
            return (await self.job_info(job_id)).result

        return AsyncEventStream(await self.send(call, stream=True), cursor=cursor, reopen=reopen,
                                policy=self._reconnect_policy, sleep=self._sleep, final_result=final_result)

    async def execute(self, code: str, *, timeout_ms: int | None = None,
                      variables: Mapping[str, Any] | None = None, packages: Sequence[str] | None = None,
                      session_id: str | None = None, strict: bool | None = None,
                      plot_formats: Sequence[str] | None = None, retry: bool = False) -> ExecutionResult:
        response = await self.send(calls.execute(code, timeout_ms=timeout_ms, variables=variables,
                                                 packages=packages, session_id=session_id, strict=strict,
                                                 plot_formats=plot_formats, retry=retry))
        data = response.json()
        if response.status_code == 202:  # queued past the service's wait: follow the job to its end
            return await AsyncJob(self, str(data["jobId"])).wait()
        return ExecutionResult.from_api(data)

    async def execute_stream(self, code: str, *, timeout_ms: int | None = None,
                             variables: Mapping[str, Any] | None = None, packages: Sequence[str] | None = None,
                             session_id: str | None = None, strict: bool | None = None,
                             plot_formats: Sequence[str] | None = None, retry: bool = False) -> AsyncEventStream:
        """Run code: `async with await client.execute_stream(code) as events: async for event in events: ...`."""
        return await self._stream(calls.execute_stream(code, timeout_ms=timeout_ms, variables=variables,
                                                       packages=packages, session_id=session_id, strict=strict,
                                                       plot_formats=plot_formats, retry=retry),
                                  StreamCursor())

    async def submit(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
                     packages: Sequence[str] | None = None, session_id: str | None = None,
                     strict: bool | None = None, plot_formats: Sequence[str] | None = None,
                     retry: bool = False) -> AsyncJob:
        data = await self._json(calls.submit(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                             session_id=session_id, strict=strict, plot_formats=plot_formats,
                                             retry=retry))
        return AsyncJob(self, str(data["jobId"]))

    def job(self, job_id: str) -> AsyncJob:
        return AsyncJob(self, job_id)

    async def job_info(self, job_id: str) -> JobInfo:
        return JobInfo.from_api(await self._json(calls.get_job(job_id)))

    async def job_events(self, job_id: str, *, last_event_id: str | None = None) -> AsyncEventStream:
        return await self._stream(calls.job_events(job_id, last_event_id=last_event_id),
                                  StreamCursor(job_id=job_id, last_event_id=last_event_id))

    async def cancel_job(self, job_id: str) -> str:
        return str((await self._json(calls.cancel_job(job_id)))["status"])

    def session(self, *, packages: Sequence[str] | None = None, variables: Mapping[str, Any] | None = None,
                retry: bool = False) -> SessionCreation:
        """Create a session: `s = await client.session()`, or `async with client.session() as s:` (deleted on exit)."""
        async def create() -> AsyncSession:
            data = await self._json(calls.create_session(packages=packages, variables=variables, retry=retry))
            return AsyncSession(self, SessionInfo.from_api(data))

        return SessionCreation(create)

    def attach_session(self, session_id: str) -> AsyncSession:
        return AsyncSession(self, SessionInfo(session_id=session_id))

    async def sessions(self) -> list[SessionInfo]:
        return [SessionInfo.from_api(item) for item in (await self._json(calls.list_sessions()))["sessions"]]

    async def session_info(self, session_id: str) -> SessionInfo:
        return SessionInfo.from_api(await self._json(calls.get_session(session_id)))

    async def set_session_variables(self, session_id: str, variables: Mapping[str, Any]) -> dict[str, Variable]:
        data = await self._json(calls.set_variables(session_id, variables))
        return {name: Variable.from_api(info) for name, info in (data.get("variables") or {}).items()}

    async def delete_session(self, session_id: str) -> None:
        await self.send(calls.delete_session(session_id))

    async def install_packages(self, session_id: str, packages: Sequence[str], *, force: bool = False,
                               retry: bool = False) -> InstallReport:
        return InstallReport.from_api(await self._json(calls.install_packages(session_id, packages, force=force,
                                                                              retry=retry)))

    async def validate(self, code: str, *, strict: bool | None = None,
                       include_warnings: bool | None = None) -> ValidationReport:
        return ValidationReport.from_api(await self._json(calls.validate(code, strict=strict,
                                                                         include_warnings=include_warnings)))

    async def packages(self, *, search: str | None = None, category: str | None = None) -> list[PackageInfo]:
        data = await self._json(calls.list_packages(search=search, category=category))
        return [PackageInfo.from_api(item) for item in data["packages"]]

    async def audit(self, **filters: Any) -> dict[str, Any]:
        return await self._json(calls.audit(**filters))

    async def health(self) -> Health:
        return decode_health(await self.send(calls.health()))

    async def version(self) -> ServerVersion:
        return ServerVersion.from_api(await self._json(calls.version()))
