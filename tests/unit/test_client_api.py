"""What each SDK method sends and how it reads the answer, against a mocked transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from penny_client import (
    Conflict,
    JobStatus,
    NotFound,
    SandboxClient,
    SessionStatus,
    Unavailable,
    Unsupported,
)
from tests.unit.client_fakes import envelope, make_client, result_api

SESSION = {"sessionId": "s1", "status": "ready", "createdAt": "2025-01-02T03:04:05.678+00:00",
           "expiresAt": "2025-01-02T03:34:05.678+00:00", "worker": "host-1"}
SESSION_VIEW = {**SESSION, "lastUsedAt": "2025-01-02T03:04:06.000+00:00", "executionCount": 2,
                "variables": {"x": {"type": "int", "repr": "1", "size": 28}}, "packages": [],
                "resources": {"memoryBytes": 13_000_000, "cpuPercent": 0.5, "diskBytes": 0}}


def test_execute_sends_the_api_body_and_returns_a_typed_result() -> None:
    answer = result_api(status="error", stdout="hi\n", result=None,
                        error={"type": "ZeroDivisionError", "message": "division by zero",
                               "traceback": ["Traceback (most recent call last):",
                                             "ZeroDivisionError: division by zero"]},
                        variables={"a": {"type": "list", "repr": "[1]", "size": 64, "len": 1}})
    client, recorder, _ = make_client(lambda request: httpx.Response(200, json=answer))
    result = client.execute("print('hi')\n1/0", timeout_ms=500, variables={"a": [1]}, session_id="s1")
    request = recorder.requests[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/execute")
    assert recorder.bodies()[0] == {"code": "print('hi')\n1/0", "timeout": 500, "variables": {"a": [1]},
                                    "sessionId": "s1"}
    assert result.status is JobStatus.ERROR and not result.ok
    assert result.error is not None and result.error.format().endswith("ZeroDivisionError: division by zero")
    assert result.variables["a"].length == 1 and result.variables["a"].size_bytes == 64
    assert result.metrics.duration_ms == 2 and result.to_api() == answer


def test_optional_fields_are_left_out_of_the_body() -> None:
    client, recorder, _ = make_client(lambda request: httpx.Response(200, json=result_api()))
    client.execute("1")
    assert recorder.bodies() == [{"code": "1"}]


def test_packages_on_an_execution_are_sent_and_unsupported_is_raised() -> None:
    client, recorder, _ = make_client(lambda request: envelope(400, "unsupported", "no package installation"))
    with pytest.raises(Unsupported):
        client.execute("import x", packages=["x"])
    assert recorder.bodies()[0]["packages"] == ["x"]


def test_the_api_key_is_sent_as_a_bearer_token() -> None:
    recorder_requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        recorder_requests.append(request)
        return httpx.Response(200, json={"status": "healthy", "uptime": 3, "workers": [], "queue": {"depth": 0}})

    with SandboxClient("http://penny.test/", "k-123", transport=httpx.MockTransport(handler)) as client:
        assert client.health().ok
    assert recorder_requests[0].headers["Authorization"] == "Bearer k-123"
    assert str(recorder_requests[0].url) == "http://penny.test/health"


def test_health_answers_even_when_the_service_is_unhealthy() -> None:
    body = {"status": "unhealthy", "uptime": 9, "workers": [], "reason": "redis unreachable"}
    client, recorder, sleeps = make_client(lambda request: httpx.Response(503, json=body))
    health = client.health()
    assert health.status == "unhealthy" and not health.ok and health.to_api() == body
    assert len(recorder.requests) == 1 and sleeps == []


def test_health_503_without_a_health_body_raises_unavailable() -> None:
    client, _, _ = make_client(lambda request: envelope(503, "unavailable", retry_after="1"), retries=0)
    with pytest.raises(Unavailable):
        client.health()


def test_submit_returns_a_job_whose_status_and_cancel_use_its_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"jobId": "j9", "status": "queued"})
        if request.method == "GET":
            return httpx.Response(200, json={"jobId": "j9", "status": "running", "worker": "host-1"})
        return httpx.Response(202, json={"jobId": "j9", "status": "running", "cancelRequested": True})

    client, recorder, _ = make_client(handler)
    job = client.submit("import time; time.sleep(9)", timeout_ms=10_000)
    assert job.id == "j9" and job.status is JobStatus.RUNNING
    assert job.cancel() == "running"
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs/j9"), ("DELETE", "/api/v1/jobs/j9")]


def test_cancelling_an_ended_job_raises_conflict() -> None:
    client, _, _ = make_client(lambda request: envelope(409, "conflict", "job j1 already ended (success)"))
    with pytest.raises(Conflict):
        client.job("j1").cancel()


def test_a_finished_job_info_carries_its_result() -> None:
    client, _, _ = make_client(lambda request: httpx.Response(
        200, json={"jobId": "j1", "status": "success", "worker": "h", "result": result_api(stdout="1\n")}))
    info = client.job_info("j1")
    assert info.status.is_final and info.result is not None and info.result.stdout == "1\n"


def test_a_session_is_created_used_and_deleted_on_exit() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = (request.method, request.url.path)
        if path == ("POST", "/api/v1/sessions"):
            return httpx.Response(201, json=SESSION)
        if path == ("POST", "/api/v1/execute"):
            return httpx.Response(200, json=result_api(sessionId="s1", result={"type": "int", "repr": "2"},
                                                       sessionState="kept"))
        if path == ("GET", "/api/v1/sessions/s1"):
            return httpx.Response(200, json=SESSION_VIEW)
        if path == ("PUT", "/api/v1/sessions/s1/variables"):
            return httpx.Response(200, json={"variables": {"y": {"type": "str", "repr": "'v'"}}})
        if path == ("DELETE", "/api/v1/sessions/s1"):
            return httpx.Response(204)
        raise AssertionError(path)

    client, recorder, _ = make_client(handler)
    with client.session(variables={"x": 1}) as session:
        assert session.created.status is SessionStatus.READY and session.created.worker == "host-1"
        assert session.created.created_at is not None and session.created.created_at.year == 2025
        result = session.run("x + 1")
        assert result.result is not None and result.result.repr == "2" and result.session_state == "kept"
        assert session.variables["x"].repr == "1"
        assert session.set_variables({"y": "v"})["y"].type == "str"
    bodies = recorder.bodies()
    assert bodies[0] == {"variables": {"x": 1}}
    assert bodies[1] == {"code": "x + 1", "sessionId": "s1"}
    assert bodies[3] == {"variables": {"y": "v"}}
    assert (recorder.requests[-1].method, recorder.requests[-1].url.path) == ("DELETE", "/api/v1/sessions/s1")


def test_leaving_a_session_deletes_it_also_when_the_block_raises_and_never_raises_itself() -> None:
    answers = [httpx.Response(201, json=SESSION), envelope(404, "not_found", "no session s1")]
    client, recorder, _ = make_client(lambda request: answers.pop(0))
    with pytest.raises(RuntimeError, match="user's"), client.session():
        raise RuntimeError("the user's own error")
    assert recorder.requests[-1].method == "DELETE"


def test_sessions_packages_on_create_map_unsupported() -> None:
    client, recorder, _ = make_client(lambda request: envelope(400, "unsupported", "no package installation"))
    with pytest.raises(Unsupported):
        client.session(packages=["requests"])
    assert recorder.bodies() == [{"packages": ["requests"]}]


def test_session_list_and_view_are_typed() -> None:
    answers = [httpx.Response(200, json={"sessions": [SESSION_VIEW]}), httpx.Response(200, json=SESSION_VIEW)]
    client, _, _ = make_client(lambda request: answers.pop(0))
    (listed,) = client.sessions()
    info = client.session_info("s1")
    assert listed == info
    assert info.execution_count == 2 and info.resources.memory_bytes == 13_000_000
    assert info.to_api() == SESSION_VIEW


def test_validate_sends_its_options_and_reads_errors_and_warnings() -> None:
    answer = {"valid": False, "errors": [{"line": 1, "col": 0, "rule": "blocked-import", "message": "os is blocked"}],
              "warnings": [{"line": 2, "col": 4, "rule": "eval", "message": "eval is discouraged"}]}
    client, recorder, _ = make_client(lambda request: httpx.Response(200, json=answer))
    report = client.validate("import os\n    eval('1')", strict=True, include_warnings=True)
    assert (recorder.requests[0].method, recorder.requests[0].url.path) == ("POST", "/api/v1/validate")
    assert recorder.bodies()[0] == {"code": "import os\n    eval('1')", "strict": True, "includeWarnings": True}
    assert not report.valid
    assert (report.errors[0].line, report.errors[0].col, report.errors[0].rule) == (1, 0, "blocked-import")
    assert report.warnings[0].message == "eval is discouraged"


def test_packages_are_listed_with_search_and_category_as_query_parameters() -> None:
    answer = {"packages": [{"name": "numpy", "version": "2.1.0", "category": "data-science",
                            "description": "arrays"}]}
    client, recorder, _ = make_client(lambda request: httpx.Response(200, json=answer))
    (numpy,) = client.packages(search="num", category="data-science")
    request = recorder.requests[0]
    assert (request.method, request.url.path) == ("GET", "/api/v1/packages")
    assert dict(request.url.params) == {"search": "num", "category": "data-science"}
    assert (numpy.name, numpy.version, numpy.category, numpy.description) == ("numpy", "2.1.0", "data-science",
                                                                              "arrays")
    client.packages()
    assert recorder.requests[1].url.query == b""


def test_install_posts_the_session_and_packages_and_reads_both_lists() -> None:
    answer = {"installed": [{"name": "tqdm", "version": "4.66.0"}],
              "failed": [{"name": "evil", "reason": "not on the allowlist"}]}
    client, recorder, _ = make_client(lambda request: httpx.Response(200, json=answer))
    report = client.attach_session("s1").install("tqdm", "evil", force=True)
    assert (recorder.requests[0].method, recorder.requests[0].url.path) == ("POST", "/api/v1/packages/install")
    assert recorder.bodies()[0] == {"sessionId": "s1", "packages": ["tqdm", "evil"], "force": True}
    assert report.installed[0].version == "4.66.0" and report.failed[0].reason == "not on the allowlist"
    assert not report.ok


@pytest.mark.parametrize("call", [
    lambda c: c.validate("1"), lambda c: c.packages(), lambda c: c.install_packages("s1", ["x"])])
def test_endpoints_this_server_lacks_raise_not_found(call: Callable[[SandboxClient], object]) -> None:
    body = json.dumps({"error": {"code": "not_found", "message": "The requested URL was not found on the server.",
                                 "details": {}}})
    client, _, _ = make_client(lambda request: httpx.Response(404, content=body,
                                                              headers={"content-type": "application/json"}))
    with pytest.raises(NotFound):
        call(client)
