"""The `penny` command line at parity with API v1: run options, display() output, notes, `penny jobs`,
`--version`, and a hint instead of a traceback when nothing listens."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from penny_client import SandboxClient, __version__, cli
from penny_client.events import DisplayEvent, ResultEvent, StdoutEvent, UnknownEvent
from penny_client.models import ExecutionResult, Plot, Value
from tests.unit.client_fakes import Handler, envelope, result_api, sse_event
from tests.unit.test_client_cli import Serve, stream_of

URL = ("--url", "http://penny.test")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Serve:
    """serve(handler): the CLI's client talks to this handler instead of the network."""

    def install(handler: Handler) -> None:
        def factory(url: str, api_key: str | None = None) -> SandboxClient:
            return SandboxClient(url, api_key, transport=httpx.MockTransport(handler), retries=0)

        monkeypatch.setattr(cli, "SandboxClient", factory)

    return install


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(("text", "packages"), [
    ("tabulate", ["tabulate"]), ("numpy, tabulate", ["numpy", "tabulate"]),
    ("pandas>=2,<3,numpy", ["pandas>=2,<3", "numpy"]), ("a==1,!=1.5,~=1.0,b", ["a==1,!=1.5,~=1.0", "b"]),
    (",tabulate,", ["tabulate"])])
def test_packages_split_on_commas_but_not_inside_a_version_specifier(text: str, packages: list[str]) -> None:
    assert cli.split_packages(text) == packages


def test_run_sends_packages_strict_and_svg(serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return stream_of(sse_event("1-0", "result", result_api(packages={
            "installed": [{"name": "tabulate", "version": "0.9.0"}], "failed": []})))

    serve(handler)
    source = tmp_path / "job.py"
    source.write_text("import tabulate")
    assert cli.main(["run", str(source), *URL, "--packages", "tabulate,pandas>=2,<3", "--packages", "numpy",
                     "--strict", "--svg"]) == 0
    assert bodies == [{"code": "import tabulate", "packages": ["tabulate", "pandas>=2,<3", "numpy"],
                       "strict": True, "plotFormats": ["svg"]}]
    assert capsys.readouterr().err == "penny: installed tabulate 0.9.0\n"
    assert cli.main(["run", str(source), *URL]) == 0
    assert bodies[-1] == {"code": "import tabulate"}  # no option: the service's defaults


def test_run_prints_display_output_in_order_and_notes_and_unsaved_plots(
        serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve(lambda request: stream_of(
        sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
        sse_event("2-0", "stdout", {"text": "no newline"}),
        sse_event("3-0", "display", {"type": "Card", "repr": "<Card>", "html": "<b>card</b>"}),
        sse_event("4-0", "plot", {"format": "png", "data": PNG}),
        sse_event("5-0", "stdout", {"text": "after\n"}),
        sse_event("6-0", "result", result_api(
            stdout="no newlineafter\n", plots=[{"format": "png", "data": PNG}] * 2,
            displays=[{"type": "Card", "repr": "<Card>", "html": "<b>card</b>"}],
            notes=["plot 3 dropped: 6000000 bytes is over the 5242880-byte bound"]))))
    source = tmp_path / "job.py"
    source.write_text("display(Card())")
    assert cli.main(["run", str(source), *URL]) == 0
    out, err = capsys.readouterr()
    assert out == "no newline\n<Card>\nafter\n"
    assert err == ("penny: note: plot 3 dropped: 6000000 bytes is over the 5242880-byte bound\n"
                   "penny: 2 plots produced, not saved (--plots DIR saves them)\n")
    assert cli.main(["run", str(source), *URL, "--plots", str(tmp_path / "out")]) == 0
    assert "not saved" not in capsys.readouterr().err and len(list((tmp_path / "out").iterdir())) == 2


def test_a_strict_refusal_and_refused_packages_say_why(
        serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers = [envelope(422, "policy_violation", "the code breaks the policy (strict mode)", details={
                   "valid": False, "warnings": [],
                   "errors": [{"line": 1, "col": 0, "rule": "blocked_import", "message": "os is blocked"}]}),
               envelope(400, "validation_error", "some packages may not be installed", details={
                   "packages": [{"name": "left-pad", "reason": "not in the allowlist"}]})]
    serve(lambda request: answers.pop(0))
    source = tmp_path / "job.py"
    source.write_text("import os")
    assert cli.main(["run", str(source), *URL, "--strict"]) == 3
    assert capsys.readouterr().err == ("penny: policy_violation (422): the code breaks the policy (strict mode)\n"
                                       "  line 1, col 0: blocked_import: os is blocked\n")
    assert cli.main(["run", str(source), *URL, "--packages", "left-pad"]) == 3
    assert capsys.readouterr().err.endswith("\n  left-pad: not in the allowlist\n")


def test_jobs_show_prints_the_status_and_result_or_the_api_document(
        serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    result = result_api("j1", stdout="a\nb\n", result={"type": "int", "repr": "42"}, notes=["a note"])
    answers = [{"jobId": "j1", "status": "running", "worker": "host-1"},
               {"jobId": "j1", "status": "success", "worker": "host-1", "result": result}]
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=answers.pop(0))

    serve(handler)
    assert cli.main(["jobs", "show", "j1", *URL]) == 0
    assert capsys.readouterr().out == "j1  running  host-1\n"
    assert cli.main(["jobs", "show", "j1", *URL, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"jobId": "j1", "status": "success", "worker": "host-1",
                                                   "result": result}
    assert [(r.method, r.url.path) for r in requests] == [("GET", "/api/v1/jobs/j1")] * 2


def test_jobs_show_text_of_an_ended_job(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    result = result_api("j1", status="error", stdout="a\nb\n", notes=["a note"],
                        error={"type": "ValueError", "message": "bad", "traceback": []})
    serve(lambda request: httpx.Response(200, json={"jobId": "j1", "status": "error", "worker": "host-1",
                                                    "result": result}))
    assert cli.main(["jobs", "show", "j1", *URL]) == 0  # the question was answered: exit 0 whatever the job did
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "j1  error  host-1"
    assert "  error: ValueError: bad" in lines and "  note: a note" in lines
    assert lines[-3:] == ["stdout:", "  a", "  b"]


def test_jobs_cancel_and_an_unknown_job(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    answers = [httpx.Response(202, json={"jobId": "j1", "status": "cancelled", "cancelRequested": True}),
               envelope(409, "conflict", "job j2 already ended (success)"),
               envelope(404, "not_found", "no job nope")]
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(f"{request.method} {request.url.path}")
        return answers.pop(0)

    serve(handler)
    assert cli.main(["jobs", "cancel", "j1", *URL]) == 0
    assert capsys.readouterr().out == "j1  cancelled\n"
    assert cli.main(["jobs", "cancel", "j2", *URL, "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "conflict"
    assert cli.main(["jobs", "show", "nope", *URL]) == 3
    assert "not_found (404): no job nope" in capsys.readouterr().err
    assert methods == ["DELETE /api/v1/jobs/j1", "DELETE /api/v1/jobs/j2", "GET /api/v1/jobs/nope"]


EVENTS = [sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
          sse_event("2-0", "started", {"jobId": "j1", "worker": "host-1"}),
          sse_event("3-0", "stdout", {"text": "hi\n"}),
          sse_event("4-0", "display", {"type": "Card", "repr": "<Card>"}),
          sse_event("5-0", "plot", {"format": "png", "data": PNG, "width": 640, "height": 480}),
          sse_event("6-0", "result", result_api("j1", status="error", error={
              "type": "ZeroDivisionError", "message": "division by zero", "traceback": []}))]


def test_jobs_events_prints_one_line_per_event_and_exits_by_the_jobs_ending(
        serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return stream_of(*EVENTS)

    serve(handler)
    assert cli.main(["jobs", "events", "j1", *URL]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "1-0  queued", "2-0  started  host-1", '3-0  stdout  "hi\\n"', "4-0  display  Card: <Card>",
        "5-0  plot  png 640x480", "6-0  result  error (ZeroDivisionError: division by zero)"]
    assert cli.main(["jobs", "events", "j1", *URL, "--after", "2-0", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["jobId"] == "j1"  # only what came after 2-0 (the client drops what a server repeats)
    assert [e["event"] for e in document["events"]] == ["stdout", "display", "plot", "result"]
    assert document["events"][0] == {"id": "3-0", "event": "stdout", "data": {"text": "hi\n"}}
    assert [r.headers.get("Last-Event-ID") for r in requests] == [None, "2-0"]


def test_an_event_line_is_one_bounded_line() -> None:
    long = StdoutEvent(id="1-0", text="x\n" * 500)
    assert "\n" not in cli.event_line(long) and len(cli.event_line(long)) == cli.EVENT_LINE_CHARS
    assert cli.event_line(UnknownEvent(id="2-0", name="progress", data={"percent": 5})) == \
        '2-0  progress  {"percent": 5}'
    assert cli.event_line(DisplayEvent(id="3-0", display=Value(type="T", repr="a\nb"))) == "3-0  display  T: a b"
    plotless = ResultEvent(id="4-0", result=ExecutionResult.from_api(result_api()))
    assert cli.event_line(plotless) == "4-0  result  success"
    assert Plot(format="svg", data="").extension == "svg"


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out == f"penny {__version__}\n"


def test_a_refused_connection_gives_a_hint_to_start_the_service_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = closed_port_url()
    assert cli.main(["health", "--url", url]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"penny: cannot connect to {url} (") and "Connection refused" in err
    assert "make run" in err and "Traceback" not in err
    assert cli.main(["jobs", "show", "j1", "--url", url, "--json"]) == 3
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "connection_failed" and error["details"] == {"url": url, "hint": cli.START_HINT}
