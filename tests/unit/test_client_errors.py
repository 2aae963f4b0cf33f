"""Error envelopes become typed exceptions; 429/503 and dropped connections are retried as the policy says."""

from __future__ import annotations

import httpx
import pytest

from penny_client import (
    ApiError,
    Conflict,
    ConnectionFailed,
    Forbidden,
    InternalError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PolicyViolation,
    RequestError,
    RetryPolicy,
    ServiceError,
    Unauthorized,
    Unavailable,
    Unsupported,
    UnsupportedMediaType,
    ValidationError,
)
from penny_client.errors import error_from_response, parse_retry_after
from tests.unit.client_fakes import envelope, make_client, result_api

CODES = [
    (400, "validation_error", ValidationError, RequestError),
    (400, "unsupported", Unsupported, RequestError),
    (401, "unauthorized", Unauthorized, RequestError),
    (403, "forbidden", Forbidden, RequestError),
    (404, "not_found", NotFound, RequestError),
    (409, "conflict", Conflict, RequestError),
    (413, "payload_too_large", PayloadTooLarge, RequestError),
    (415, "unsupported_media_type", UnsupportedMediaType, RequestError),
    (422, "policy_violation", PolicyViolation, RequestError),
    (429, "overloaded", Overloaded, ServiceError),
    (503, "unavailable", Unavailable, ServiceError),
    (500, "internal_error", InternalError, ServiceError),
]
FIXED = RetryPolicy(max_retries=3, backoff_s=1.0, max_backoff_s=30.0, random=lambda: 1.0)


@pytest.mark.parametrize(("status", "code", "cls", "branch"), CODES)
def test_every_envelope_code_maps_to_its_exception_under_its_branch(
        status: int, code: str, cls: type[ApiError], branch: type[ApiError]) -> None:
    client, _, _ = make_client(lambda request: envelope(status, code, "why", details={"k": 1}), retries=0)
    with pytest.raises(cls) as caught:
        client.job_info("j1")
    error = caught.value
    assert isinstance(error, branch)
    assert (error.code, error.http_status, error.message, error.details) == (code, status, "why", {"k": 1})


def test_an_unknown_code_maps_to_the_branch_of_its_status() -> None:
    request_error = error_from_response(418, b'{"error": {"code": "teapot", "message": "no"}}', {})
    service_error = error_from_response(502, b"<html>bad gateway</html>", {})
    assert type(request_error) is RequestError and request_error.code == "teapot"
    assert type(service_error) is ServiceError and service_error.code == "http_502"
    assert "bad gateway" in service_error.message


def test_retry_after_becomes_seconds_on_overloaded_and_unavailable() -> None:
    assert error_from_response(429, b'{"error": {"code": "overloaded", "message": "m"}}',
                               {"retry-after": "7"}).retry_after_s == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_an_endpoint_the_server_lacks_raises_not_found() -> None:
    client, _, _ = make_client(lambda request: envelope(404, "not_found", "The requested URL was not found"))
    with pytest.raises(NotFound):
        client.validate("print(1)")


def test_idempotent_calls_are_retried_on_503_honoring_retry_after() -> None:
    answers = [envelope(503, "unavailable", retry_after="5"), envelope(429, "overloaded", retry_after="2"),
               httpx.Response(200, json={"jobId": "j1", "status": "running", "worker": "h"})]
    client, recorder, sleeps = make_client(lambda request: answers.pop(0), retries=FIXED)
    assert client.job_info("j1").status == "running"
    assert len(recorder.requests) == 3
    assert sleeps == [5.0, 2.0]


def test_without_retry_after_the_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    client, recorder, sleeps = make_client(lambda request: envelope(503, "unavailable"),
                                           retries=RetryPolicy(max_retries=4, backoff_s=1.0, max_backoff_s=3.0,
                                                               random=lambda: 0.0))
    with pytest.raises(Unavailable):
        client.job_info("j1")
    assert len(recorder.requests) == 5
    assert sleeps == [0.5, 1.0, 1.5, 1.5]  # ceilings 1, 2, 3, 3 (capped), times the jitter floor 0.5


def test_jitter_stays_between_half_and_all_of_the_ceiling() -> None:
    assert RetryPolicy(backoff_s=2.0, random=lambda: 0.0).delay_s(2) == 2.0
    assert RetryPolicy(backoff_s=2.0, random=lambda: 1.0).delay_s(2) == 4.0
    assert RetryPolicy(max_backoff_s=10.0).delay_s(1, retry_after_s=60.0) == 10.0


def test_connection_errors_on_idempotent_calls_are_retried_then_raise_connection_failed() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, recorder, sleeps = make_client(refuse, retries=FIXED)
    with pytest.raises(ConnectionFailed):
        client.sessions()
    assert len(recorder.requests) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_non_idempotent_calls_are_not_retried_unless_asked() -> None:
    client, recorder, sleeps = make_client(lambda request: envelope(429, "overloaded", retry_after="1"),
                                           retries=FIXED)
    with pytest.raises(Overloaded) as caught:
        client.execute("print(1)")
    assert caught.value.retry_after_s == 1.0
    assert len(recorder.requests) == 1 and sleeps == []


def test_execute_with_retry_true_is_retried() -> None:
    answers = [envelope(429, "overloaded", retry_after="1"), httpx.Response(200, json=result_api())]
    client, recorder, sleeps = make_client(lambda request: answers.pop(0), retries=FIXED)
    assert client.execute("print(1)", retry=True).ok
    assert len(recorder.requests) == 2 and sleeps == [1.0]


def test_a_refused_request_other_than_429_and_503_is_never_retried() -> None:
    client, recorder, sleeps = make_client(lambda request: envelope(409, "conflict"), retries=FIXED)
    with pytest.raises(Conflict):
        client.cancel_job("j1")
    assert len(recorder.requests) == 1 and sleeps == []


def test_submit_and_session_create_are_not_retried_on_a_dropped_connection() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("server disconnected", request=request)

    client, recorder, _ = make_client(drop, retries=FIXED)
    with pytest.raises(ConnectionFailed):
        client.submit("print(1)")
    with pytest.raises(ConnectionFailed):
        client.session()
    assert [request.method for request in recorder.requests] == ["POST", "POST"]
