"""The SDK at parity with API v1: displays, notes, findings, packages and Value.html in results; DisplayEvent in
streams; strict, plot_formats and packages sent by execute, submit, stream and session runs (sync and asyncio)."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import fields
from typing import Any

import httpx
import pytest

from penny_client import (
    DisplayEvent,
    ExecutionResult,
    InstallReport,
    Issue,
    PolicyViolation,
    ResultEvent,
    ServerVersion,
    UnknownEvent,
    Value,
    __version__,
)
from penny_client.aio import AsyncSandboxClient
from penny_client.events import event_from_sse
from tests.unit.client_fakes import BreakingStream, envelope, make_client, result_api, sse_event

TABLE = "<table><tr><td>Oslo</td></tr></table>"
STATIC = {"line": 1, "col": 0, "rule": "blocked_import", "message": "os is blocked"}
RUNTIME = {"rule": "blocked_import", "target": "os", "message": "import of os is blocked", "source": "runtime",
           "severity": "error"}
RICH = result_api(
    result={"type": "DataFrame", "repr": "   city\n0  Oslo", "html": TABLE},
    displays=[{"type": "Card", "repr": "<Card>", "html": "<b>card</b>"},
              {"type": "dict", "repr": "{'plain': True}"},
              {"type": "Doc", "repr": "Doc()", "json": {"a": [1]}}],
    notes=["plot 1 dropped: 6000000 bytes is over the 5242880-byte bound"],
    findings=[STATIC, RUNTIME],
    packages={"installed": [{"name": "tabulate", "version": "0.9.0"}],
              "failed": [{"name": "left-pad", "reason": "not in the allowlist"}]})


def test_a_result_carries_displays_notes_findings_packages_and_the_values_html() -> None:
    result = ExecutionResult.from_api(RICH)
    assert result.result == Value(type="DataFrame", repr="   city\n0  Oslo", html=TABLE)
    assert [d.html for d in result.displays] == ["<b>card</b>", None, None]
    assert result.displays[1].repr == "{'plain': True}" and result.displays[2].json == {"a": [1]}
    assert result.notes == ("plot 1 dropped: 6000000 bytes is over the 5242880-byte bound",)
    assert result.findings == (
        Issue(line=1, col=0, rule="blocked_import", message="os is blocked"),
        Issue(line=None, col=None, rule="blocked_import", message="import of os is blocked", severity="error",
              source="runtime", target="os"))
    assert isinstance(result.packages, InstallReport) and not result.packages.ok
    assert [(p.name, p.version) for p in result.packages.installed] == [("tabulate", "0.9.0")]
    assert result.packages.failed[0].reason == "not in the allowlist"
    assert result.to_api() == RICH


def test_a_result_without_the_new_fields_reads_with_empty_defaults() -> None:
    result = ExecutionResult.from_api(result_api(result={"type": "int", "repr": "1"}, packages=None))
    assert (result.displays, result.notes, result.findings, result.packages) == ((), (), (), None)
    assert result.result == Value(type="int", repr="1") and result.result.html is None


def test_the_models_stay_frozen() -> None:
    result = ExecutionResult.from_api(RICH)
    with pytest.raises(AttributeError):
        result.notes = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.displays[0].html = "<i>changed</i>"  # type: ignore[misc]


def test_a_display_event_is_typed_and_keeps_its_data() -> None:
    data = {"type": "Card", "repr": "<Card>", "html": "<b>card</b>"}
    event = event_from_sse("5-0", "display", data)
    assert event == DisplayEvent(id="5-0", display=Value(type="Card", repr="<Card>", html="<b>card</b>"))
    assert event.type == "display" and event.raw == data


def test_a_stream_yields_display_events_in_order_with_the_output() -> None:
    chunks = [sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
              sse_event("2-0", "stdout", {"text": "before\n"}),
              sse_event("3-0", "display", {"type": "Card", "repr": "<Card>", "html": "<b>card</b>"}),
              sse_event("4-0", "result", RICH)]
    client, recorder, _ = make_client(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=BreakingStream(chunks, None)))
    events = list(client.execute_stream("display(Card())", strict=True, plot_formats=["svg"]))
    assert [event.type for event in events] == ["queued", "stdout", "display", "result"]
    assert isinstance(events[2], DisplayEvent) and events[2].display.html == "<b>card</b>"
    assert isinstance(events[3], ResultEvent) and events[3].result.displays[0].repr == "<Card>"
    assert recorder.bodies() == [{"code": "display(Card())", "strict": True, "plotFormats": ["svg"]}]


def test_execute_submit_and_session_runs_send_strict_plot_formats_and_packages() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/jobs":
            return httpx.Response(202, json={"jobId": "j2", "status": "queued"})
        if request.url.path == "/api/v1/sessions":
            return httpx.Response(201, json={"sessionId": "s1"})
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(200, json=result_api())

    client, recorder, _ = make_client(handler)
    client.execute("1", strict=False, plot_formats=["png", "svg"], packages=["tabulate"])
    assert client.submit("2", strict=True, packages=["numpy>=1,<3"]).id == "j2"
    with client.session() as session:
        session.run("3", plot_formats=["svg"], packages=["tabulate"], strict=True)
        session.submit("4", strict=True)
    bodies = [body for body in recorder.bodies() if body and "code" in body]
    assert bodies == [
        {"code": "1", "packages": ["tabulate"], "strict": False, "plotFormats": ["png", "svg"]},
        {"code": "2", "packages": ["numpy>=1,<3"], "strict": True},
        {"code": "3", "packages": ["tabulate"], "sessionId": "s1", "strict": True, "plotFormats": ["svg"]},
        {"code": "4", "sessionId": "s1", "strict": True}]


def test_strict_code_the_policy_refuses_raises_policy_violation_with_the_findings() -> None:
    details = {"valid": False, "errors": [STATIC], "warnings": []}
    client, _, _ = make_client(lambda request: envelope(422, "policy_violation", "the code breaks the policy",
                                                        details=details))
    with pytest.raises(PolicyViolation) as caught:
        client.execute("import os", strict=True)
    assert caught.value.details["errors"] == [STATIC]


def test_execute_follows_the_job_when_the_service_answers_202_after_a_long_queue() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/execute":
            return httpx.Response(202, json={"jobId": "j7", "status": "queued"},
                                  headers={"Location": "/api/v1/jobs/j7"})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=BreakingStream(
            [sse_event("1-0", "queued", {"jobId": "j7", "status": "queued"}),
             sse_event("9-0", "result", result_api("j7", result={"type": "int", "repr": "42"}))], None))

    client, recorder, _ = make_client(handler)
    result = client.execute("6*7")
    assert result.job_id == "j7" and result.result == Value(type="int", repr="42")
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/api/v1/execute"), ("GET", "/api/v1/jobs/j7/events")]


def test_the_asyncio_client_sends_the_same_options_and_reads_the_same_result() -> None:
    seen: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content) if request.content else None))
        if request.url.path == "/api/v1/execute/stream":
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"".join([
                sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
                sse_event("2-0", "display", {"type": "Card", "repr": "<Card>"}),
                sse_event("3-0", "result", RICH)]))
        if request.url.path == "/api/v1/jobs":
            return httpx.Response(202, json={"jobId": "j2", "status": "queued"})
        return httpx.Response(200, json=RICH)

    async def scenario() -> tuple[list[str], ExecutionResult, str]:
        async with AsyncSandboxClient("http://penny.test", transport=httpx.MockTransport(handler)) as client:
            async with await client.execute_stream("s", strict=True, plot_formats=["svg"]) as events:
                kinds = [event.type async for event in events]
            result = await client.execute("e", packages=["tabulate"])
            job = await client.submit("j", strict=False)
            return kinds, result, job.id

    kinds, result, job_id = asyncio.run(scenario())
    assert kinds == ["queued", "display", "result"] and job_id == "j2"
    assert result.displays[0].html == "<b>card</b>" and result.result is not None and result.result.html == TABLE
    assert seen == [("/api/v1/execute/stream", {"code": "s", "strict": True, "plotFormats": ["svg"]}),
                    ("/api/v1/execute", {"code": "e", "packages": ["tabulate"]}),
                    ("/api/v1/jobs", {"code": "j", "strict": False})]


def test_the_user_agent_names_the_installed_version() -> None:
    client, recorder, _ = make_client(lambda request: httpx.Response(200, json={"sessions": []}))
    client.sessions()
    assert recorder.requests[0].headers["User-Agent"] == f"penny-client/{__version__}"
    assert __version__[0].isdigit()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def test_the_sdk_reads_every_field_of_the_apis_execution_result_and_every_stream_event() -> None:
    from api.executions import JOB_EVENTS
    from api.schemas import DisplaySchema, ExecutionResultSchema, ValueSchema

    # A field the API adds shows up here before a user misses it.
    assert {_snake(name) for name in ExecutionResultSchema().fields} <= {f.name for f in fields(ExecutionResult)}
    assert set(ValueSchema().fields) | set(DisplaySchema().fields) <= {f.name for f in fields(Value)}
    unknown = [name for name in JOB_EVENTS if isinstance(event_from_sse("1-0", name, SAMPLES[name]), UnknownEvent)]
    assert unknown == []


SAMPLES: dict[str, dict[str, Any]] = {
    "queued": {"jobId": "j1", "status": "queued"}, "started": {"jobId": "j1", "worker": "w"},
    "stdout": {"text": ""}, "stderr": {"text": ""}, "plot": {"format": "png", "data": ""},
    "display": {"type": "T", "repr": "r"}, "metrics": {}, "result": result_api()}


def test_the_service_version_and_the_healths_version_are_read() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/version":
            return httpx.Response(200, json={"version": "0.1.0", "apiVersion": "1.1.0"})
        return httpx.Response(200, json={"status": "healthy", "uptime": 1, "version": "0.1.0", "apiVersion": "1.1.0"})

    client, _, _ = make_client(handler)
    assert client.version() == ServerVersion(version="0.1.0", api_version="1.1.0")
    health = client.health()
    assert (health.version, health.api_version) == ("0.1.0", "1.1.0")


def _empty_then(job_answers: list[dict[str, Any]], streams: list[list[bytes]]) -> Any:
    """A handler: each GET .../events serves the next of `streams` (ended cleanly); GET /jobs/{id} the next answer."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  stream=BreakingStream(streams.pop(0), None))
        return httpx.Response(200, json=job_answers.pop(0))

    return handler


def test_resuming_after_the_result_ends_at_once_with_the_jobs_result() -> None:
    ended = {"jobId": "j1", "status": "success", "worker": "w", "result": result_api("j1", stdout="done\n")}
    client, recorder, sleeps = make_client(_empty_then([ended], [[]]))
    with client.job_events("j1", last_event_id="9-0") as stream:
        assert list(stream) == []
    assert stream.result is not None and stream.result.stdout == "done\n" and sleeps == []
    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("GET", "/api/v1/jobs/j1/events"), ("GET", "/api/v1/jobs/j1")]


def test_a_stream_ended_empty_while_the_job_runs_is_resumed_where_it_was() -> None:
    running = {"jobId": "j1", "status": "running", "worker": "w"}
    streams = [[], [sse_event("10-0", "stdout", {"text": "late\n"}), sse_event("11-0", "result", result_api())]]
    client, recorder, _ = make_client(_empty_then([running], streams))
    texts = [e.raw for e in client.job_events("j1", last_event_id="9-0") if e.type == "stdout"]
    assert texts == [{"text": "late\n"}]
    assert [r.headers.get("Last-Event-ID") for r in recorder.requests if r.url.path.endswith("/events")] == [
        "9-0", "9-0"]


def test_the_asyncio_stream_resumed_after_the_result_ends_with_the_jobs_result() -> None:
    ended = {"jobId": "j1", "status": "error", "worker": "w", "result": result_api("j1", status="error")}
    answers = [httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b""),
               httpx.Response(200, json=ended)]

    async def scenario() -> ExecutionResult:
        transport = httpx.MockTransport(lambda request: answers.pop(0))
        async with AsyncSandboxClient("http://penny.test", transport=transport) as client:
            return await (await client.job("j1").events(last_event_id="9-0")).until_result()

    assert asyncio.run(scenario()).status.value == "error" and answers == []
