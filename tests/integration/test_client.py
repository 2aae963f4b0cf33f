"""The Python SDK against the real service: executions, streams (also cut mid-way), jobs, sessions, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib import metadata

import httpx
import pytest

from penny_client import (
    Conflict,
    JobStatus,
    NotFound,
    PolicyViolation,
    SandboxClient,
    SessionStatus,
    ValidationError,
)
from penny_client.aio import AsyncSandboxClient
from penny_client.events import DisplayEvent, Event, MetricsEvent, QueuedEvent, ResultEvent, StdoutEvent
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

COUNT_SLOWLY = "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.1)\n"
# Prints, then waits: a test that needs output to arrive before the end cancels the job on seeing it.
PRINT_THEN_WAIT = "import time\nprint('ready', flush=True)\ntime.sleep(15)\nprint('never')\n"


@pytest.fixture
def client(cluster: Cluster) -> Iterator[SandboxClient]:
    with SandboxClient(cluster.url) as sdk:
        yield sdk


def without_metrics(events: list[Event]) -> list[Event]:
    """Live resource samples come and go with timing; the tests compare the rest."""
    return [event for event in events if not isinstance(event, MetricsEvent)]


class _CutAfterFirstStdout(httpx.SyncByteStream):
    """Passes the body through up to the end of the first stdout event, then drops the connection."""

    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        seen = b""
        for chunk in self._inner:
            seen += chunk
            start = seen.find(b"event: stdout\n")
            end = seen.find(b"\n\n", start) if start >= 0 else -1
            if end < 0:
                continue
            yield seen[:end + 2]
            self._inner.close()  # the real TCP connection goes away here
            raise httpx.RemoteProtocolError("connection cut by the test")
        yield seen

    def close(self) -> None:
        self._inner.close()


class CuttingTransport(httpx.BaseTransport):
    """A real HTTP transport that cuts the first event stream it serves after its first stdout event."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []
        self.cut = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self._inner.handle_request(request)
        if self.cut or not request.url.path.endswith(("/execute/stream", "/events")):
            return response
        self.cut = True
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_CutAfterFirstStdout(response.stream), extensions=response.extensions)

    def close(self) -> None:
        self._inner.close()


def test_execute_returns_a_typed_result_with_output_value_and_variables(client: SandboxClient) -> None:
    result = client.execute("import math\nprint(math.pi)\nk = n * 2\n6*7", variables={"n": 5})
    assert result.status is JobStatus.SUCCESS and result.ok
    assert result.stdout == "3.141592653589793\n"
    assert result.result is not None and (result.result.type, result.result.repr) == ("int", "42")
    assert result.variables["k"].repr == "10" and result.variables["n"].type == "int"
    assert result.worker and result.job_id and result.metrics.peak_memory_bytes > 0


def test_a_failing_code_is_a_result_with_the_error_and_its_traceback(client: SandboxClient) -> None:
    result = client.execute("x = 1\n1/0")
    assert result.status is JobStatus.ERROR
    assert result.error is not None and result.error.type == "ZeroDivisionError"
    assert result.error.traceback[0] == "Traceback (most recent call last):"
    assert result.error.format().splitlines()[-1] == "ZeroDivisionError: division by zero"


def test_execute_stream_delivers_ordered_events_and_output_before_the_end(client: SandboxClient) -> None:
    events: list[Event] = []
    with client.execute_stream(PRINT_THEN_WAIT, timeout_ms=20_000) as stream:
        for event in stream:
            events.append(event)
            if isinstance(event, StdoutEvent) and stream.job_id is not None:
                client.cancel_job(stream.job_id)  # possible only because the output came before the end
    events = without_metrics(events)
    assert [event.type for event in events] == ["queued", "started", "stdout", "result"]
    assert isinstance(events[2], StdoutEvent) and events[2].text == "ready\n"
    final = events[-1]
    assert isinstance(final, ResultEvent)
    assert final.result.status is JobStatus.CANCELLED and "never" not in final.result.stdout
    ids = [tuple(map(int, event.id.split("-"))) for event in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_stream_cut_mid_way_resumes_with_no_event_lost_or_repeated(cluster: Cluster) -> None:
    transport = CuttingTransport()
    with SandboxClient(cluster.url, transport=transport) as sdk:
        events = list(sdk.execute_stream(COUNT_SLOWLY))
    assert transport.cut
    post, resume = transport.requests
    assert (post.method, post.url.path) == ("POST", "/api/v1/execute/stream")
    first_stdout = next(event for event in events if isinstance(event, StdoutEvent))
    assert (resume.method, resume.headers["Last-Event-ID"]) == ("GET", first_stdout.id)
    queued = events[0]
    assert isinstance(queued, QueuedEvent)
    job_id = queued.job_id
    assert resume.url.path == f"/api/v1/jobs/{job_id}/events"
    full = [(item["id"], item["event"]) for item in cluster.events(job_id)]
    assert [(event.id, event.type) for event in events] == full
    assert "".join(event.text for event in events if isinstance(event, StdoutEvent)) == "0\n1\n2\n3\n4\n"


def test_job_events_cut_mid_way_resume_too(cluster: Cluster) -> None:
    transport = CuttingTransport()
    with SandboxClient(cluster.url, transport=transport) as sdk:
        job = sdk.submit(COUNT_SLOWLY)
        texts = [event.text for event in job.events() if isinstance(event, StdoutEvent)]
    assert transport.cut and texts == ["0\n", "1\n", "2\n", "3\n", "4\n"]
    assert transport.requests[-1].headers.get("Last-Event-ID")


def test_submit_wait_and_events_give_the_same_result(client: SandboxClient) -> None:
    job = client.submit("print('queued work')", timeout_ms=5_000)
    result = job.wait()
    assert result.status is JobStatus.SUCCESS and result.stdout == "queued work\n" and result.job_id == job.id
    events = without_metrics(list(job.events()))
    assert [event.type for event in events] == ["queued", "started", "stdout", "result"]
    assert job.info().result == result
    with pytest.raises(Conflict):
        job.cancel()


def test_cancelling_a_running_job_ends_it_cancelled(client: SandboxClient) -> None:
    job = client.submit(PRINT_THEN_WAIT, timeout_ms=20_000)
    with job.events() as events:
        for event in events:
            if isinstance(event, StdoutEvent):
                break
    assert job.cancel() in ("running", "cancelled")
    result = job.wait()
    assert result.status is JobStatus.CANCELLED and result.stdout == "ready\n"


def test_a_session_keeps_state_and_is_deleted_on_exit(client: SandboxClient) -> None:
    with client.session(variables={"base": 40}) as session:
        assert session.created.status is SessionStatus.READY
        assert session.run("x = base + 1").ok
        result = session.run("x + 1")
        assert result.result is not None and result.result.repr == "42"
        assert result.session_id == session.id and result.session_state == "kept"
        assert session.set_variables({"names": ["a", "b"]})["names"].length == 2
        variables = session.variables
        assert variables["x"].repr == "41" and variables["names"].repr == "['a', 'b']"
        assert session.id in [info.session_id for info in client.sessions()]
        assert session.info().execution_count >= 2
    with pytest.raises(NotFound):
        client.session_info(session.id)


def test_errors_map_to_their_exceptions(client: SandboxClient) -> None:
    with pytest.raises(NotFound) as unknown_job:
        client.job_info("no-such-job")
    assert unknown_job.value.details == {"jobId": "no-such-job"}
    with pytest.raises(NotFound):
        client.job("no-such-job").events()
    with pytest.raises(ValidationError) as bad_timeout:
        client.execute("print(1)", timeout_ms=0)
    assert "timeout" in bad_timeout.value.details["fields"]
    with pytest.raises(NotFound):
        client.attach_session("no-such-session").run("1")
    with pytest.raises(NotFound):
        client.delete_session("no-such-session")


def test_health_reports_the_running_worker(client: SandboxClient) -> None:
    health = client.health()
    assert health.ok and health.status in ("healthy", "degraded")
    assert len(health.workers) == 1 and health.uptime_s is not None


def test_the_asyncio_client_runs_streams_and_uses_sessions(cluster: Cluster) -> None:
    async def scenario() -> tuple[str, list[str], str]:
        async with AsyncSandboxClient(cluster.url) as sdk:
            result = await sdk.execute("print('async')")
            stream = await sdk.execute_stream(COUNT_SLOWLY)
            texts = [event.text async for event in stream if isinstance(event, StdoutEvent)]
            async with sdk.session() as session:
                await session.run("y = 6")
                value = (await session.run("y * 7")).result
            assert value is not None
            return result.stdout, texts, value.repr

    assert asyncio.run(scenario()) == ("async\n", ["0\n", "1\n", "2\n", "3\n", "4\n"], "42")


# Rich output as a notebook would show it: an object with _repr_html_, a plain display, a DataFrame value, and a
# value whose rich representation is too big to keep (the service drops it with a note, keeping the repr).
RICH_OUTPUT = ("import pandas as pd\n"
               "class Card:\n    def _repr_html_(self):\n        return '<b>card</b>'\n"
               "class Huge:\n    def _repr_html_(self):\n        return 'x' * 6_000_000\n"
               "print('before', flush=True)\ndisplay(Card())\ndisplay({'plain': True})\n"
               "pd.DataFrame({'city': ['Oslo', 'Lima']})\n")


def test_a_result_carries_displays_the_values_html_and_notes(client: SandboxClient) -> None:
    result = client.execute(RICH_OUTPUT)
    assert result.status is JobStatus.SUCCESS, result.error
    assert [(d.type, d.html) for d in result.displays] == [("Card", "<b>card</b>"), ("dict", None)]
    assert result.displays[1].repr == "{'plain': True}"
    assert result.result is not None and result.result.type == "DataFrame"
    assert result.result.html is not None and "<table" in result.result.html and "Lima" in result.result.html
    assert result.notes == ()
    huge = client.execute(RICH_OUTPUT.replace("pd.DataFrame({'city': ['Oslo', 'Lima']})", "Huge()"))
    assert huge.result is not None and huge.result.html is None and huge.result.repr.startswith("<")
    assert len(huge.notes) == 1 and "dropped" in huge.notes[0]


def test_a_stream_yields_display_events_between_the_output(client: SandboxClient) -> None:
    with client.execute_stream(RICH_OUTPUT) as stream:
        events = without_metrics(list(stream))
    kinds = [event.type for event in events]
    assert kinds == ["queued", "started", "stdout", "display", "display", "result"]
    card = events[3]
    assert isinstance(card, DisplayEvent) and card.display.html == "<b>card</b>"
    assert card.raw == {"type": "Card", "repr": card.display.repr, "html": "<b>card</b>"}


def test_strict_refuses_what_the_policy_check_finds_and_findings_come_with_a_run(client: SandboxClient) -> None:
    code = "print('before')\nimport subprocess\nprint('after')"
    with pytest.raises(PolicyViolation) as refused:
        client.execute(code, strict=True)
    assert refused.value.details["errors"][0]["rule"] == "blocked_import"
    with pytest.raises(PolicyViolation):
        client.submit(code, strict=True)
    result = client.execute(code, strict=False)  # runs; the run-time layer stops the import itself
    assert result.status is JobStatus.POLICY_VIOLATION and result.stdout == "before\n"
    static, runtime = result.findings
    assert (static.rule, static.line, static.source) == ("blocked_import", 2, None)
    assert (runtime.rule, runtime.source, runtime.severity, runtime.target) == (
        "blocked_import", "runtime", "error", "subprocess")


def test_plot_formats_choose_svg_in_executions_jobs_and_sessions(client: SandboxClient) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    assert [p.format for p in client.execute(code).plots] == ["png"]
    svg = client.execute(code, plot_formats=["svg"]).plots
    assert [p.format for p in svg] == ["svg"] and svg[0].to_bytes().lstrip().startswith(b"<?xml")
    both = client.submit(code, plot_formats=["png", "svg"]).wait()
    assert [p.format for p in both.plots] == ["png", "svg"]
    with client.session() as session:
        assert [p.format for p in session.run(code, plot_formats=["svg"]).plots] == ["svg"]


@pytest.mark.slow
def test_packages_are_installed_for_a_run_and_reported_in_its_result(client: SandboxClient) -> None:
    result = client.execute("import tabulate\ntabulate.__name__", packages=["tabulate"])
    assert result.status is JobStatus.SUCCESS, result.error
    assert result.packages is not None and result.packages.ok
    assert [p.name for p in result.packages.installed] == ["tabulate"]
    assert client.execute("1").packages is None


def test_the_asyncio_client_streams_displays_and_runs_with_the_new_options(cluster: Cluster) -> None:
    async def scenario() -> tuple[list[str], list[str], JobStatus, list[str]]:
        async with AsyncSandboxClient(cluster.url) as sdk:
            async with await sdk.execute_stream(RICH_OUTPUT) as stream:
                kinds = [event.type async for event in stream if not isinstance(event, MetricsEvent)]
            try:
                await sdk.execute("import subprocess", strict=True)
                raise AssertionError("strict code ran")
            except PolicyViolation:
                pass
            async with sdk.session() as session:
                job = await session.submit("import matplotlib.pyplot as plt\nplt.plot([1, 2])",
                                           plot_formats=["svg"])
                result = await job.wait()
            return kinds, [p.format for p in result.plots], result.status, [d.repr for d in result.displays]

    kinds, formats, status, displays = asyncio.run(scenario())
    assert kinds == ["queued", "started", "stdout", "display", "display", "result"]
    assert (formats, status, displays) == (["svg"], JobStatus.SUCCESS, [])


def test_the_service_says_its_version_and_the_health_carries_it(client: SandboxClient) -> None:
    version = client.version()
    assert version.version == metadata.version("penny-sandbox") and version.api_version
    health = client.health()
    assert (health.version, health.api_version) == (version.version, version.api_version)
