"""Event streams resume after a dropped connection with Last-Event-ID: nothing lost, nothing repeated."""

from __future__ import annotations

import httpx
import pytest

from penny_client import ConnectionFailed, NotFound, RetryPolicy
from penny_client.events import Event, QueuedEvent, ResultEvent, StartedEvent, StdoutEvent
from tests.unit.client_fakes import BreakingStream, envelope, make_client, result_api, sse_event

QUEUED = sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"})
STARTED = sse_event("2-0", "started", {"jobId": "j1", "worker": "host-1"})
OUT_A = sse_event("3-0", "stdout", {"text": "a\n"})
OUT_B = sse_event("4-0", "stdout", {"text": "b\n"})
RESULT = sse_event("5-0", "result", result_api(stdout="a\nb\n"))
SSE_HEADERS = {"content-type": "text/event-stream"}


def sse_response(chunks: list[bytes], error: Exception | None = None) -> httpx.Response:
    return httpx.Response(200, headers=SSE_HEADERS, stream=BreakingStream(chunks, error))


def summary(events: list[Event]) -> list[tuple[str, str]]:
    return [(event.type, event.text if isinstance(event, StdoutEvent) else event.id) for event in events]


FULL = [("queued", "1-0"), ("started", "2-0"), ("stdout", "a\n"), ("stdout", "b\n"), ("result", "5-0")]


def test_a_dropped_stream_resumes_from_the_last_event_without_loss_or_repeat() -> None:
    answers = [sse_response([b": keepalive\n\n", QUEUED, STARTED, OUT_A], httpx.ReadError("connection reset")),
               sse_response([OUT_B, RESULT])]
    client, recorder, sleeps = make_client(lambda request: answers.pop(0))
    stream = client.execute_stream("print('a'); print('b')")
    events = list(stream)
    assert summary(events) == FULL
    post, resume = recorder.requests
    assert (post.method, post.url.path) == ("POST", "/api/v1/execute/stream")
    assert (resume.method, resume.url.path) == ("GET", "/api/v1/jobs/j1/events")
    assert resume.headers["Last-Event-ID"] == "3-0"
    assert sleeps == []  # the first reconnect is immediate
    assert stream.result is not None and stream.result.stdout == "a\nb\n"
    assert stream.job_id == "j1"


def test_a_stream_that_ends_before_its_result_is_resumed_too() -> None:
    answers = [sse_response([QUEUED, STARTED]), sse_response([OUT_A, OUT_B, RESULT])]
    client, recorder, _ = make_client(lambda request: answers.pop(0))
    assert summary(list(client.execute_stream("x"))) == FULL
    assert recorder.requests[1].headers["Last-Event-ID"] == "2-0"


def test_an_event_cut_in_half_is_not_delivered_and_arrives_whole_after_the_resume() -> None:
    answers = [sse_response([QUEUED, STARTED, OUT_A, OUT_B[:12]], httpx.RemoteProtocolError("peer closed")),
               sse_response([OUT_B, RESULT])]
    client, recorder, _ = make_client(lambda request: answers.pop(0))
    assert summary(list(client.execute_stream("x"))) == FULL
    assert recorder.requests[1].headers["Last-Event-ID"] == "3-0"


def test_events_a_server_sends_again_after_the_resume_point_are_skipped() -> None:
    answers = [sse_response([QUEUED, STARTED, OUT_A], httpx.ReadError("reset")),
               sse_response([STARTED, OUT_A, OUT_B, RESULT])]
    client, _, _ = make_client(lambda request: answers.pop(0))
    assert summary(list(client.execute_stream("x"))) == FULL


def test_a_drop_before_the_job_id_is_known_fails_and_never_posts_again() -> None:
    client, recorder, _ = make_client(lambda request: sse_response([b": keepalive\n\n"], httpx.ReadError("reset")))
    with pytest.raises(ConnectionFailed, match="not re-submitted"):
        list(client.execute_stream("x"))
    assert [request.method for request in recorder.requests] == ["POST"]


def test_repeated_drops_without_progress_back_off_then_give_up() -> None:
    answers = [sse_response([QUEUED], httpx.ReadError("reset"))] + [
        sse_response([], httpx.ReadError("reset")) for _ in range(3)]
    client, recorder, sleeps = make_client(
        lambda request: answers.pop(0), reconnects=3,
        retries=RetryPolicy(backoff_s=1.0, random=lambda: 1.0))
    stream = client.execute_stream("x")
    assert isinstance(next(stream), QueuedEvent)
    with pytest.raises(ConnectionFailed, match="broke 4 times"):
        next(stream)
    assert len(recorder.requests) == 4
    assert all(request.headers["Last-Event-ID"] == "1-0" for request in recorder.requests[1:])
    assert sleeps == [1.0, 2.0]


def test_progress_resets_the_count_of_drops() -> None:
    chunks = [QUEUED, STARTED, OUT_A, OUT_B, RESULT]
    answers = [sse_response([chunk], httpx.ReadError("reset")) for chunk in chunks]
    client, recorder, sleeps = make_client(lambda request: answers.pop(0), reconnects=1)
    assert summary(list(client.execute_stream("x"))) == FULL
    assert [request.headers.get("Last-Event-ID") for request in recorder.requests] == [None, "1-0", "2-0", "3-0",
                                                                                        "4-0"]
    assert sleeps == []


def test_a_job_gone_when_resuming_raises_not_found() -> None:
    answers = [sse_response([QUEUED], httpx.ReadError("reset")), envelope(404, "not_found", "no job j1")]
    client, _, _ = make_client(lambda request: answers.pop(0))
    stream = client.execute_stream("x")
    next(stream)
    with pytest.raises(NotFound):
        next(stream)


def test_job_events_start_after_a_given_id_and_wait_returns_the_result() -> None:
    client, recorder, _ = make_client(lambda request: sse_response([OUT_B, RESULT]))
    events = list(client.job("j1").events(last_event_id="3-0"))
    assert summary(events) == FULL[3:]
    assert recorder.requests[0].headers["Last-Event-ID"] == "3-0"
    result = client.job("j1").wait()
    assert result.stdout == "a\nb\n"
    assert "Last-Event-ID" not in recorder.requests[1].headers


def test_closing_a_stream_early_closes_its_connection() -> None:
    body = BreakingStream([QUEUED, STARTED, OUT_A, OUT_B, RESULT], None)
    client, _, _ = make_client(lambda request: httpx.Response(200, headers=SSE_HEADERS, stream=body))
    with client.execute_stream("x") as stream:
        assert isinstance(next(stream), QueuedEvent)
        assert isinstance(next(stream), StartedEvent)
    assert body.closed


def test_a_refused_stream_raises_at_the_call_not_at_iteration() -> None:
    client, _, _ = make_client(lambda request: envelope(400, "validation_error", "timeout must be 1..30000 ms"))
    with pytest.raises(Exception, match="timeout must be"):
        client.execute_stream("x", timeout_ms=0)


def test_the_result_event_carries_the_typed_result() -> None:
    client, _, _ = make_client(lambda request: sse_response([QUEUED, RESULT]))
    events = list(client.execute_stream("x"))
    assert isinstance(events[-1], ResultEvent) and events[-1].result.stdout == "a\nb\n"
