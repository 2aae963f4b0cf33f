"""A job's event stream that survives dropped connections: it resumes with Last-Event-ID, never re-submits.

StreamCursor is the pure part (which events were seen, where to resume); EventStream drives it over httpx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator
from types import TracebackType

import httpx

from penny_client import calls
from penny_client.errors import ConnectionFailed
from penny_client.events import Event, QueuedEvent, ResultEvent, StartedEvent, event_from_sse
from penny_client.models import ExecutionResult
from penny_client.retry import RetryPolicy
from penny_client.sse import ServerSentEvent, SSEParser

_STREAM_ID = re.compile(r"^(\d+)-(\d+)$")


def _position(event_id: str) -> tuple[int, int] | None:
    """A Redis stream id as a comparable (ms, sequence), or None for an id of another shape."""
    match = _STREAM_ID.match(event_id)
    return (int(match[1]), int(match[2])) if match else None


class StreamCursor:
    """Where a job's stream stands: its job id, the last event delivered, and its result once there."""

    def __init__(self, *, job_id: str | None = None, last_event_id: str | None = None) -> None:
        self.job_id = job_id
        self.last_event_id = last_event_id
        self.result: ExecutionResult | None = None

    @property
    def done(self) -> bool:
        return self.result is not None

    def accept(self, sse: ServerSentEvent) -> Event | None:
        """The typed event to deliver, or None when it was delivered before (ids only grow on a stream)."""
        event_id = sse.id or ""
        if self.last_event_id is not None and event_id:
            seen, current = _position(self.last_event_id), _position(event_id)
            if seen is not None and current is not None and current <= seen:
                return None
        event = event_from_sse(event_id, sse.event, json.loads(sse.data))
        if event_id:
            self.last_event_id = event_id
        if isinstance(event, QueuedEvent | StartedEvent) and event.job_id:
            self.job_id = event.job_id
        elif isinstance(event, ResultEvent):
            self.result = event.result
        return event

    def resume_call(self) -> calls.Call:
        """The request that continues this stream after the last delivered event."""
        if self.job_id is None:
            raise ConnectionFailed("the stream broke before the job was queued: its job id is unknown, and "
                                   "the code is not re-submitted (it may be running)")
        return calls.job_events(self.job_id, last_event_id=self.last_event_id)


DROPPED = (httpx.TransportError,)  # RemoteProtocolError, ReadError, ReadTimeout, ...


class CursorView:
    """What a stream (sync or async) tells about where it is, read from its StreamCursor."""

    _cursor: StreamCursor

    @property
    def job_id(self) -> str | None:
        return self._cursor.job_id

    @property
    def last_event_id(self) -> str | None:
        return self._cursor.last_event_id

    @property
    def result(self) -> ExecutionResult | None:
        """The ExecutionResult, once the `result` event was delivered."""
        return self._cursor.result


class EventStream(CursorView, Iterator[Event]):
    """Iterate it for the job's events in order; a dropped connection is resumed where it broke.

    Close it (or use it as a context manager) when you stop before the `result` event.
    """

    def __init__(self, response: httpx.Response, *, cursor: StreamCursor,
                 reopen: Callable[[calls.Call], httpx.Response], policy: RetryPolicy,
                 sleep: Callable[[float], None],
                 final_result: Callable[[str], ExecutionResult | None] | None = None) -> None:
        self._response: httpx.Response | None = response
        self._cursor = cursor
        self._reopen = reopen
        self._policy = policy
        self._sleep = sleep
        self._final_result = final_result
        self._events = self._run()

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def until_result(self) -> ExecutionResult:
        """Consume the remaining events; the ExecutionResult."""
        for _ in self:
            pass
        if self._cursor.result is None:  # pragma: no cover - _run ends only with a result or an exception
            raise ConnectionFailed("the stream ended without a result")
        return self._cursor.result

    def close(self) -> None:
        self._events.close()
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _job_ended(self) -> bool:
        """After a stream the service ended with nothing to send (a resume after the result, or a clean cut):
        whether the job has ended; its result is then taken from GET /jobs/{id}."""
        if self._final_result is None or self._cursor.job_id is None:
            return False
        self._cursor.result = self._final_result(self._cursor.job_id)
        return self._cursor.result is not None

    def _run(self) -> Generator[Event, None, None]:
        drops = 0  # consecutive drops without a delivered event
        while True:
            response = self._response
            assert response is not None
            parser = SSEParser()
            delivered = False
            try:
                for chunk in response.iter_bytes():
                    for sse in parser.feed(chunk):
                        event = self._cursor.accept(sse)
                        if event is None:
                            continue
                        drops = 0
                        delivered = True
                        yield event
                        if self._cursor.done:
                            return
                if not delivered and self._job_ended():
                    return
                cause: Exception = ConnectionFailed("the stream ended before the result")
            except DROPPED as exc:
                cause = exc
            finally:
                response.close()
                self._response = None
            drops += 1
            if not self._policy.allows(drops):
                raise ConnectionFailed(f"the stream of job {self._cursor.job_id} broke {drops} times in a row "
                                       f"without progress: {cause}") from cause
            if drops > 1:  # the first reconnect is immediate: a proxy or a network blip cut one connection
                self._sleep(self._policy.delay_s(drops - 1))
            self._response = self._reopen(self._cursor.resume_call())
