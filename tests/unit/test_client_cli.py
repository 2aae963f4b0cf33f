"""The `penny` command line against a mocked service: output, --json documents, exit statuses."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from penny_client import SandboxClient, cli
from penny_client.models import JobStatus
from tests.unit.client_fakes import BreakingStream, Handler, envelope, result_api, sse_event

Serve = Callable[[Handler], None]

PNG = b"\x89PNG\r\n\x1a\nfake"


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Serve:
    """serve(handler): the CLI's client talks to this handler instead of the network."""

    def install(handler: Handler) -> None:
        def factory(url: str, api_key: str | None = None) -> SandboxClient:
            return SandboxClient(url, api_key, transport=httpx.MockTransport(handler), retries=0)

        monkeypatch.setattr(cli, "SandboxClient", factory)

    return install


def stream_of(*chunks: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"},
                          stream=BreakingStream(list(chunks), None))


@pytest.mark.parametrize(("status", "code"), [
    (JobStatus.SUCCESS, 0), (JobStatus.ERROR, 1), (JobStatus.TIMEOUT, 2), (JobStatus.MEMORY_EXCEEDED, 2),
    (JobStatus.OUTPUT_LIMIT, 2), (JobStatus.POLICY_VIOLATION, 2), (JobStatus.CANCELLED, 2),
    (JobStatus.WORKER_LOST, 2)])
def test_each_final_status_has_its_exit_code(status: JobStatus, code: int) -> None:
    assert cli.exit_code(status) == code


def test_run_streams_output_prints_the_value_and_the_traceback_as_python_does(
        serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    error = {"type": "ZeroDivisionError", "message": "division by zero",
             "traceback": ["Traceback (most recent call last):", '  File "<cell>", line 2, in <module>',
                           "ZeroDivisionError: division by zero"]}
    serve(lambda request: stream_of(sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
                                    sse_event("2-0", "stdout", {"text": "partial"}),
                                    sse_event("3-0", "stderr", {"text": "warned\n"}),
                                    sse_event("4-0", "result", result_api(status="error", error=error))))
    source = tmp_path / "job.py"
    source.write_text("print('partial', end='')\n1/0\n")
    assert cli.main(["run", str(source), "--url", "http://penny.test"]) == 1
    out, err = capsys.readouterr()
    assert out == "partial"
    assert err == "warned\n" + "\n".join(error["traceback"]) + "\n"


def test_run_saves_plots_into_the_folder_and_json_is_the_result(
        serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plots = [{"format": "png", "data": base64.b64encode(PNG).decode(), "width": 1, "height": 1},
             {"format": "plotly", "data": {"data": []}}]
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return stream_of(sse_event("1-0", "queued", {"jobId": "j1", "status": "queued"}),
                         sse_event("2-0", "stdout", {"text": "drawn\n"}),
                         sse_event("3-0", "result", result_api(stdout="drawn\n", plots=plots,
                                                               result={"type": "int", "repr": "7"})))

    serve(handler)
    source = tmp_path / "plot.py"
    source.write_text("plot()")
    status = cli.main(["run", str(source), "--url", "http://penny.test", "--plots", str(tmp_path / "out"),
                       "--json", "--var", "n=3", "--var", 'names=["a"]', "--timeout", "900", "--session", "s1"])
    assert status == 0
    out, _ = capsys.readouterr()
    document = json.loads(out)  # one document, no streamed text
    assert document["stdout"] == "drawn\n" and document["result"] == {"type": "int", "repr": "7"}
    saved = [Path(path) for path in document["savedPlots"]]
    assert saved[0].read_bytes() == PNG and saved[0].suffix == ".png" and saved[1].suffix == ".json"
    assert seen == [{"code": "plot()", "timeout": 900, "variables": {"n": 3, "names": ["a"]}, "sessionId": "s1"}]


def test_a_rejected_run_exits_3_and_prints_the_fields_at_fault(
        serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve(lambda request: envelope(400, "validation_error", "the request is invalid",
                                   details={"fields": {"timeout": ["timeout must be 1..30000 ms"]}}))
    source = tmp_path / "a.py"
    source.write_text("1")
    assert cli.main(["run", str(source), "--url", "http://penny.test", "--timeout", "0"]) == 3
    assert "timeout: timeout must be 1..30000 ms" in capsys.readouterr().err
    assert cli.main(["run", str(source), "--url", "http://penny.test", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "validation_error"


def test_a_bad_variable_or_a_missing_file_is_a_usage_error_with_exit_3(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "-", "--var", "x=not json"])
    assert caught.value.code == 3
    assert "not JSON" in capsys.readouterr().err
    assert cli.main(["run", str(tmp_path / "missing.py"), "--url", "http://127.0.0.1:9"]) == 3
    assert "cannot read" in capsys.readouterr().err


def test_validate_prints_findings_and_exits_1_when_invalid(
        serve: Serve, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    serve(lambda request: httpx.Response(200, json={
        "valid": False, "errors": [{"line": 1, "col": 0, "rule": "blocked-import", "message": "os is blocked"}],
        "warnings": []}))
    source = tmp_path / "bad.py"
    source.write_text("import os")
    assert cli.main(["validate", str(source), "--url", "http://penny.test"]) == 1
    assert capsys.readouterr().out == f"{source}:1:0: error blocked-import: os is blocked\n"
    assert cli.main(["validate", str(source), "--url", "http://penny.test", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False


def test_packages_lists_as_a_table_or_as_json(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"packages": [
            {"name": "numpy", "version": "2.1.0", "category": "data-science", "description": "arrays",
             "preinstalled": True}]})

    serve(handler)
    assert cli.main(["packages", "--search", "num", "--url", "http://penny.test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"packages": [  # as served, also fields the client ignores
        {"name": "numpy", "version": "2.1.0", "category": "data-science", "description": "arrays",
         "preinstalled": True}]}
    assert cli.main(["packages", "--category", "data-science", "--url", "http://penny.test"]) == 0
    assert capsys.readouterr().out.split() == ["numpy", "2.1.0", "data-science", "arrays"]
    assert [dict(request.url.params) for request in requests] == [{"search": "num"}, {"category": "data-science"}]


def test_commands_on_an_endpoint_the_server_lacks_exit_3(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    serve(lambda request: envelope(404, "not_found", "The requested URL was not found on the server."))
    assert cli.main(["packages", "--url", "http://penny.test", "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "not_found"
