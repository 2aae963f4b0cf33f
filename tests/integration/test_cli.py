"""The `penny` command line as a user runs it (a subprocess) against the real service."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from penny_client import SandboxClient
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

PENNY_SCRIPT = Path(sys.executable).with_name("penny")


def penny(cluster: Cluster | str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `penny ARGS` with PENNY_URL set; its exit status, stdout and stderr."""
    url = cluster if isinstance(cluster, str) else cluster.url
    env = {**os.environ, "PENNY_URL": url}
    env.pop("PENNY_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "penny_client.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120)


def unused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str], str]:
    """script(code): the path of a new file holding code."""

    def write(code: str) -> str:
        path = tmp_path / f"script{len(list(tmp_path.iterdir()))}.py"
        path.write_text(code)
        return str(path)

    return write


def test_run_prints_the_output_and_the_value_and_exits_0(cluster: Cluster, script: Callable[[str], str]) -> None:
    done = penny(cluster, "run", script("for i in range(3):\n    print('line', i)\n6*7\n"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "line 0\nline 1\nline 2\n42\n"
    assert done.stderr == ""  # no progress line when stderr is not a terminal


def test_a_raising_script_prints_its_traceback_and_exits_1(cluster: Cluster, script: Callable[[str], str]) -> None:
    done = penny(cluster, "run", script("print('before')\n1/0\n"))
    assert done.returncode == 1
    assert done.stdout == "before\n"
    lines = done.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):" and lines[-1] == "ZeroDivisionError: division by zero"


def test_a_script_over_its_timeout_exits_2(cluster: Cluster) -> None:
    done = penny(cluster, "run", "-", "--timeout", "500", stdin="while True: pass\n")
    assert done.returncode == 2
    assert "timeout" in done.stderr


def test_a_rejected_request_exits_3(cluster: Cluster) -> None:
    invalid = penny(cluster, "run", "-", "--timeout", "0", stdin="print(1)\n")
    assert invalid.returncode == 3 and "validation_error" in invalid.stderr and "timeout" in invalid.stderr
    url = unused_url()
    unreachable = penny(url, "run", "-", stdin="print(1)\n")
    assert unreachable.returncode == 3 and "Traceback" not in unreachable.stderr
    assert unreachable.stderr.startswith(f"penny: cannot connect to {url} (") and "make run" in unreachable.stderr
    unknown_session = penny(cluster, "run", "-", "--session", "no-such-session", stdin="print(1)\n")
    assert unknown_session.returncode == 3 and "not_found" in unknown_session.stderr


def test_run_reads_stdin_and_sets_variables(cluster: Cluster) -> None:
    done = penny(cluster, "run", "-", "--var", "n=21", "--var", 'names=["a", "b"]', "--var", 'who="you"',
                 stdin="print(n * 2, names, who)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "42 ['a', 'b'] you\n"


def test_run_json_prints_only_the_result_document(cluster: Cluster) -> None:
    done = penny(cluster, "run", "-", "--json", stdin="print('hidden from the terminal')\n1/0\n")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "error" and result["stdout"] == "hidden from the terminal\n"
    assert result["error"]["type"] == "ZeroDivisionError" and result["jobId"]
    rejected = penny(unused_url(), "run", "-", "--json", stdin="print(1)\n")
    assert rejected.returncode == 3 and json.loads(rejected.stdout)["error"]["code"] == "connection_failed"


def test_session_new_list_show_run_and_rm(cluster: Cluster) -> None:
    created = penny(cluster, "session", "new", "--var", "base=40")
    assert created.returncode == 0, created.stderr
    session_id = created.stdout.strip()
    try:
        assert penny(cluster, "run", "-", "--session", session_id, stdin="x = base + 1\n").returncode == 0
        assert penny(cluster, "run", "-", "--session", session_id, stdin="x + 1\n").stdout == "42\n"
        listed = json.loads(penny(cluster, "session", "list", "--json").stdout)
        assert session_id in [item["sessionId"] for item in listed["sessions"]]
        assert session_id in penny(cluster, "session", "list").stdout
        shown = json.loads(penny(cluster, "session", "show", session_id, "--json").stdout)
        assert shown["status"] == "ready" and shown["variables"]["x"]["repr"] == "41"
        text = penny(cluster, "session", "show", session_id).stdout
        assert session_id in text and "x: int = 41" in text
    finally:
        removed = penny(cluster, "session", "rm", session_id, "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout) == {"sessionId": session_id, "deleted": True}
    gone = penny(cluster, "session", "show", session_id, "--json")
    assert gone.returncode == 3 and json.loads(gone.stdout)["error"]["code"] == "not_found"


def test_session_new_json_is_the_created_session(cluster: Cluster) -> None:
    created = penny(cluster, "session", "new", "--json")
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    assert info["status"] == "ready" and info["worker"]
    assert penny(cluster, "session", "rm", info["sessionId"]).returncode == 0


def test_the_installed_penny_script_reports_health_as_json(cluster: Cluster) -> None:
    done = subprocess.run([str(PENNY_SCRIPT), "health", "--json"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PENNY_URL": cluster.url})
    assert done.returncode == 0, done.stderr
    health = json.loads(done.stdout)
    assert health["status"] in ("healthy", "degraded") and len(health["workers"]) == 1
    text = penny(cluster, "health")
    assert text.returncode == 0 and text.stdout.startswith(health["status"])


def test_version_names_the_installed_package() -> None:
    done = subprocess.run([str(PENNY_SCRIPT), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"penny {metadata.version('penny-sandbox')}\n"


def test_run_prints_display_output_and_says_when_plots_were_not_saved(cluster: Cluster, tmp_path: Path) -> None:
    code = ("import matplotlib.pyplot as plt\nprint('start')\nplt.plot([1, 2])\nplt.show()\n"
            "display({'shown': True})\nprint('end')\n")
    done = penny(cluster, "run", "-", stdin=code)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "start\n{'shown': True}\nend\n"
    assert done.stderr == "penny: 1 plot produced, not saved (--plots DIR saves them)\n"
    saved = penny(cluster, "run", "-", "--svg", "--plots", str(tmp_path / "out"), stdin=code)
    assert saved.returncode == 0 and "not saved" not in saved.stderr
    (svg,) = (tmp_path / "out").iterdir()
    assert svg.suffix == ".svg" and svg.read_bytes().lstrip().startswith(b"<?xml")


def test_strict_refuses_before_running_and_without_it_the_runtime_stops_the_import(cluster: Cluster) -> None:
    code = "print('ran')\nimport subprocess\n"
    refused = penny(cluster, "run", "-", "--strict", stdin=code)
    assert refused.returncode == 3 and refused.stdout == ""
    assert "policy_violation (422)" in refused.stderr and "line 2, col 0: blocked_import" in refused.stderr
    stopped = penny(cluster, "run", "-", stdin=code)
    assert stopped.returncode == 2 and stopped.stdout == "ran\n" and "policy_violation" in stopped.stderr


@pytest.mark.slow
def test_run_installs_packages_for_the_run(cluster: Cluster) -> None:
    done = penny(cluster, "run", "-", "--packages", "tabulate", stdin="import tabulate\nprint('ok')\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n" and done.stderr.startswith("penny: installed tabulate 0.")
    refused = penny(cluster, "run", "-", "--packages", "left-pad", stdin="print(1)\n")
    assert refused.returncode == 3 and "left-pad:" in refused.stderr and "allowlist" in refused.stderr


def test_jobs_show_events_and_cancel(cluster: Cluster) -> None:
    with SandboxClient(cluster.url) as client:
        finished = client.submit("print('hello')\n6*7")
        finished.wait()
        sleeping = client.submit("import time\ntime.sleep(15)", timeout_ms=20_000)
    shown = json.loads(penny(cluster, "jobs", "show", finished.id, "--json").stdout)
    assert shown["status"] == "success" and shown["result"]["stdout"] == "hello\n"
    text = penny(cluster, "jobs", "show", finished.id)
    assert text.returncode == 0 and text.stdout.startswith(f"{finished.id}  success  ")
    assert "  value: int = 42" in text.stdout.splitlines()
    events = penny(cluster, "jobs", "events", finished.id)
    assert events.returncode == 0, events.stderr
    lines = [line for line in events.stdout.splitlines() if "  metrics" not in line]
    assert [line.split("  ")[1] for line in lines] == ["queued", "started", "stdout", "result"]
    assert lines[2].endswith('stdout  "hello\\n"') and lines[3].endswith("result  success")
    after = json.loads(penny(cluster, "jobs", "events", finished.id, "--after", lines[2].split()[0], "--json").stdout)
    assert [event["event"] for event in after["events"] if event["event"] != "metrics"] == ["result"]
    past_the_end = penny(cluster, "jobs", "events", finished.id, "--after", lines[3].split()[0])
    assert (past_the_end.returncode, past_the_end.stdout, past_the_end.stderr) == (0, "", "")
    cancelled = penny(cluster, "jobs", "cancel", sleeping.id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.split() in ([sleeping.id, "cancelled"], [sleeping.id, "running"])
    assert json.loads(penny(cluster, "jobs", "show", sleeping.id, "--json").stdout)["status"] == "cancelled"
    again = penny(cluster, "jobs", "cancel", finished.id, "--json")
    assert again.returncode == 3 and json.loads(again.stdout)["error"]["code"] == "conflict"
