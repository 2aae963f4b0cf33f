"""Fakes for the client's unit tests: a scripted httpx.MockTransport, SSE bytes, error envelopes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from penny_client import SandboxClient
from penny_client.retry import RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]


def sse_event(event_id: str, name: str, data: dict[str, Any]) -> bytes:
    """One event framed as the service frames it."""
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()


def envelope(status: int, code: str, message: str = "refused", *, retry_after: str | None = None,
             details: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, json={"error": {"code": code, "message": message, "details": details or {}}},
                          headers=headers)


def result_api(job_id: str = "j1", **fields: Any) -> dict[str, Any]:
    """An ExecutionResult in API form."""
    return {"jobId": job_id, "sessionId": None, "status": "success", "stdout": "", "stderr": "", "truncated": False,
            "result": None, "error": None, "plots": [], "variables": {},
            "metrics": {"queuedMs": 1, "durationMs": 2, "cpuMs": 0, "peakMemoryBytes": 3}, "worker": "host-1",
            "sessionState": None, **fields}


class BreakingStream(httpx.SyncByteStream):
    """A response body that sends `chunks`, then fails like a dropped connection (or ends, with error=None)."""

    def __init__(self, chunks: list[bytes], error: Exception | None) -> None:
        self.chunks = chunks
        self.error = error
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


class Recorder:
    """A MockTransport around a handler, keeping every request it saw."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._handler(request)

    def bodies(self) -> list[Any]:
        return [json.loads(request.content) if request.content else None for request in self.requests]


def make_client(handler: Handler, *, retries: RetryPolicy | int = 3,
                **options: Any) -> tuple[SandboxClient, Recorder, list[float]]:
    """A client on a MockTransport; (client, recorder of requests, the sleeps it asked for)."""
    recorder = Recorder(handler)
    sleeps: list[float] = []
    client = SandboxClient("http://penny.test", transport=httpx.MockTransport(recorder), retries=retries,
                           sleep=sleeps.append, **options)
    return client, recorder, sleeps
