"""The asyncio client sends the same requests and resumes streams the same way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from penny_client import NotFound
from penny_client.aio import AsyncSandboxClient
from penny_client.events import StdoutEvent
from tests.unit.client_fakes import envelope, result_api, sse_event

QUEUED = sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"})
OUT_A = sse_event("2-0", "stdout", {"text": "a\n"})
OUT_B = sse_event("3-0", "stdout", {"text": "b\n"})
RESULT = sse_event("4-0", "result", result_api(stdout="a\nb\n"))


class BreakingAsyncStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], error: Exception | None) -> None:
        self.chunks, self.error = chunks, error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.error is not None:
            raise self.error


def client_on(handler: httpx.MockTransport) -> tuple[AsyncSandboxClient, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return AsyncSandboxClient("http://penny.test", transport=handler, sleep=sleep), sleeps


def test_an_async_stream_resumes_with_last_event_id_without_loss_or_repeat() -> None:
    answers = [BreakingAsyncStream([QUEUED, OUT_A], httpx.ReadError("reset")),
               BreakingAsyncStream([OUT_B, RESULT], None)]
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=answers.pop(0))

    async def scenario() -> list[str]:
        client, _ = client_on(httpx.MockTransport(handler))
        async with client:
            stream = await client.execute_stream("x")
            return [event.text async for event in stream if isinstance(event, StdoutEvent)]

    assert asyncio.run(scenario()) == ["a\n", "b\n"]
    assert [(r.method, r.url.path, r.headers.get("Last-Event-ID")) for r in requests] == [
        ("POST", "/api/v1/execute/stream", None), ("GET", "/api/v1/jobs/j1/events", "2-0")]


def test_an_async_session_context_deletes_the_session_and_maps_errors() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.method == "POST" and request.url.path == "/api/v1/sessions":
            return httpx.Response(201, json={"sessionId": "s1", "status": "ready", "worker": "h"})
        if request.method == "POST":
            return httpx.Response(200, json=result_api(result={"type": "int", "repr": "2"}))
        if request.method == "DELETE":
            return httpx.Response(204)
        return envelope(404, "not_found", "no job nope")

    async def scenario() -> str:
        client, _ = client_on(httpx.MockTransport(handler))
        async with client, client.session() as session:
            result = await session.run("x + 1")
            with pytest.raises(NotFound):
                await client.job_info("nope")
            assert result.result is not None
            return result.result.repr

    assert asyncio.run(scenario()) == "2"
    assert json.loads(requests[1].content) == {"code": "x + 1", "sessionId": "s1"}
    assert (requests[-1].method, requests[-1].url.path) == ("DELETE", "/api/v1/sessions/s1")


def test_async_retries_honor_retry_after() -> None:
    answers = [envelope(503, "unavailable", retry_after="3"), httpx.Response(200, json={"sessions": []})]

    async def scenario() -> list[float]:
        client, sleeps = client_on(httpx.MockTransport(lambda request: answers.pop(0)))
        async with client:
            assert await client.sessions() == []
        return sleeps

    assert asyncio.run(scenario()) == [3.0]
