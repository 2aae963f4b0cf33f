"""Session files, stdin, interrupt, restart and the session view over real HTTP (Redis, worker, Docker).

One stack with two tenants' keys and the runtime's policy layer switched off (the user code here makes
symlinks and FIFOs on purpose: the container and sandbox_runtime.files are what must hold).
"""

from __future__ import annotations

import ast
import base64
import concurrent.futures
import hashlib
import io
import os
import random
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from api.schemas import SessionSchema
from core import keys
from core.isolation import Tier
from tests.integration.conftest import Cluster, _open_policy_dir, assert_every_job_is_audited, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]

KEY_A, KEY_B, ADMIN = (uuid.uuid4().hex for _ in range(3))
MIB = 1024 * 1024
MAX_FILE = 10 * MIB           # policies/resources.json maxFileSize
TOTAL = 24 * MIB              # this stack's maxTotalStorage (WORKSPACE_SIZE_BYTES)
IN_TRANSIT = 12 * MIB         # this stack's TENANT_MAX_TRANSFER_BYTES: one file of MAX_FILE fits, two do not


class Api:
    """HTTP calls made with one API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=120, **kwargs)

    def execute(self, code: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/execute", json={"code": code, **body})
        assert response.status_code == 200, response.text
        return response.json()

    def session(self, **body: Any) -> str:
        response = self.call("POST", "/sessions", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["sessionId"])

    def view(self, session_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/sessions/{session_id}")
        assert response.status_code == 200, response.text
        assert SessionSchema().validate(response.json()) == {}
        return response.json()

    def put(self, session_id: str, path: str, data: bytes) -> requests.Response:
        return self.call("PUT", f"/sessions/{session_id}/files/{path}", data=data,
                         headers={"Content-Type": "application/octet-stream"})

    def get(self, session_id: str, path: str) -> requests.Response:
        return self.call("GET", f"/sessions/{session_id}/files/{path}")

    def ls(self, session_id: str, path: str = "") -> dict[str, Any]:
        response = self.call("GET", f"/sessions/{session_id}/files", params={"path": path})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def files_cluster(tier: Tier, log_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    policies = _open_policy_dir(tmp_path_factory.mktemp("files-policies"))
    with running_cluster("files", log_root, tier=tier, POOL_SIZE="2", SESSION_POOL_SIZE="2", POLICY_DIR=str(policies),
                         WORKSPACE_SIZE_BYTES=str(TOTAL), TENANT_MAX_TRANSFER_BYTES=str(IN_TRANSIT),
                         PENNY_API_KEYS=f"{KEY_A}:acme,{KEY_B}:beta",
                         PENNY_ADMIN_KEYS=ADMIN) as running:
        yield running
        assert_every_job_is_audited(running, headers={"Authorization": f"Bearer {ADMIN}"})


@pytest.fixture(scope="module")
def api(files_cluster: Cluster) -> Api:
    return Api(files_cluster.url, KEY_A)


@pytest.fixture
def session(api: Api) -> Iterator[str]:
    session_id = api.session()
    yield session_id
    api.call("DELETE", f"/sessions/{session_id}")


def test_text_and_binary_files_round_trip(api: Api, session: str) -> None:
    blobs = {"one.bin": b"\x00", "notes/readme.txt": "héllo\nwörld\n".encode(), "big/data.bin": os.urandom(9 * MIB)}
    for path, data in blobs.items():
        response = api.put(session, path, data)
        assert response.status_code == 201, response.text
        assert response.json()["size"] == len(data)
    for path, data in blobs.items():
        response = api.get(session, path)
        assert response.status_code == 200 and response.content == data
        assert response.headers["Content-Length"] == str(len(data))
    assert api.get(session, "notes/readme.txt").headers["Content-Type"].startswith("text/plain")
    listing = api.ls(session)
    assert {(e["name"], e["type"]) for e in listing["entries"]} == {
        ("one.bin", "file"), ("notes", "directory"), ("big", "directory")}
    big = api.ls(session, "big")["entries"][0]
    assert big["name"] == "data.bin" and big["size"] == 9 * MIB and big["mtime"] > 0
    seen = api.execute("import hashlib\nhashlib.sha256(open('/workspace/big/data.bin', 'rb').read()).hexdigest()",
                       sessionId=session)
    assert ast.literal_eval(seen["result"]["repr"]) == hashlib.sha256(blobs["big/data.bin"]).hexdigest()
    assert api.call("DELETE", f"/sessions/{session}/files/one.bin").status_code == 204
    assert api.get(session, "one.bin").status_code == 404


def test_an_empty_file_and_any_name_the_code_writes_download(api: Api, session: str) -> None:
    made = api.execute("open('/workspace/empty.txt', 'w').close()\n"
                       "open('/workspace/r\u00e9sum\u00e9 \u65e5\"x.txt', 'w').write('ok')",
                       sessionId=session)
    assert made["status"] == "success", made
    empty = api.get(session, "empty.txt")
    assert empty.status_code == 200 and empty.content == b"" and empty.headers["Content-Length"] == "0"
    (odd,) = [e["name"] for e in api.ls(session)["entries"] if e["name"].startswith("r")]
    response = api.get(session, urllib.parse.quote(odd))  # a quote, a space and non-Latin-1 in it
    assert response.status_code == 200 and response.content == b"ok"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="') and "filename*=UTF-8''r%C3%A9sum%C3%A9" in disposition
    assert api.execute("open('/workspace/two\\nlines.txt', 'w').write('nl')", sessionId=session)["status"] == "success"
    quoted = urllib.parse.quote("two\nlines.txt")  # a name with a newline in it
    newline = api.get(session, quoted)
    assert newline.status_code == 200 and newline.content == b"nl", newline.text
    assert 'filename="twolines.txt"' in newline.headers["Content-Disposition"]  # control characters dropped
    assert api.call("DELETE", f"/sessions/{session}/files/{quoted}").status_code == 204


def test_a_file_over_the_size_limit_and_a_full_workspace_are_refused_with_413(api: Api, session: str) -> None:
    response = api.put(session, "too-big.bin", b"x" * (MAX_FILE + 1))
    assert response.status_code == 413 and response.json()["error"]["details"]["maxFileSize"] == MAX_FILE
    assert api.put(session, "a.bin", b"a" * 9 * MIB).status_code == 201
    assert api.put(session, "b.bin", b"b" * 9 * MIB).status_code == 201
    response = api.put(session, "c.bin", b"c" * 9 * MIB)  # 27 MiB would pass the 24 MiB total
    assert response.status_code == 413, response.text
    assert response.json()["error"]["details"]["maxTotalStorage"] == TOTAL
    names = {e["name"] for e in api.ls(session)["entries"]}
    assert names == {"a.bin", "b.bin"}  # nothing of the refused files was written
    assert api.put(session, "a.bin", b"z" * 9 * MIB).status_code == 201  # a replaced file does not count twice


def test_a_tenant_cannot_hold_more_transfer_bytes_in_redis_than_its_budget(files_cluster: Cluster, api: Api,
                                                                           session: str) -> None:
    """An upload waits in Redis until its session gets to it: a tenant whose sessions are busy cannot pile up
    uploads past TENANT_MAX_TRANSFER_BYTES (429, Retry-After, nothing stored); another tenant is unaffected,
    and the budget comes back once the waiting upload was written."""
    client = files_cluster.stack.redis_client()
    total_key = keys.tenant_transfers_keys("acme")[2]
    busy = api.call("POST", "/jobs", json={"code": "import time\ntime.sleep(60)", "sessionId": session})
    assert busy.status_code == 202, busy.text
    first = os.urandom(8 * MIB)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(api.put, session, "first.bin", first)
        deadline = time.monotonic() + 60
        while int(client.get(total_key) or 0) < len(first):  # the first upload is in Redis, its job queued
            assert time.monotonic() < deadline and not waiting.done(), "the first upload never reached Redis"
            time.sleep(0.05)
        refused = api.put(session, "second.bin", os.urandom(8 * MIB))
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert refused.json()["error"]["details"]["maxTransferBytes"] == IN_TRANSIT
        assert int(client.get(total_key) or 0) == len(first)  # the refused bytes were not stored
        other = Api(files_cluster.url, KEY_B)
        other_session = other.session()
        try:
            assert other.put(other_session, "theirs.bin", os.urandom(8 * MIB)).status_code == 201
        finally:
            other.call("DELETE", f"/sessions/{other_session}")
        assert api.call("POST", f"/sessions/{session}/interrupt").json()["interrupted"] == busy.json()["jobId"]
        assert waiting.result(timeout=120).status_code == 201
    assert int(client.get(total_key) or 0) == 0
    assert api.put(session, "second.bin", b"fits now").status_code == 201
    assert api.get(session, "first.bin").content == first


def test_a_csv_is_analysed_with_pandas_and_a_png_comes_back_byte_identical(api: Api, session: str) -> None:
    csv = b"city,temp\nOslo,3\nLima,19\nCairo,28\n"
    assert api.put(session, "data/weather.csv", csv).status_code == 201
    result = api.execute(
        "import hashlib, os, pandas as pd\nimport matplotlib.pyplot as plt\n"
        "frame = pd.read_csv('/workspace/data/weather.csv')\nos.makedirs('/workspace/out', exist_ok=True)\n"
        "ax = frame.plot.bar(x='city', y='temp')\nax.figure.savefig('/workspace/out/chart.png')\nplt.close('all')\n"
        "(int(frame.temp.mean()), hashlib.sha256(open('/workspace/out/chart.png', 'rb').read()).hexdigest())",
        sessionId=session, timeout=20000)
    assert result["status"] == "success", result["error"]
    mean, digest = ast.literal_eval(result["result"]["repr"])
    assert mean == 16
    png = api.get(session, "out/chart.png")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and hashlib.sha256(png.content).hexdigest() == digest


def test_multipart_uploads_work_too(api: Api, session: str) -> None:
    response = api.call("PUT", f"/sessions/{session}/files/form.txt", files={"file": ("form.txt", io.BytesIO(b"form"))})
    assert response.status_code == 201, response.text
    assert api.get(session, "form.txt").content == b"form"


def test_paths_outside_the_workspace_links_fifos_and_directories_are_refused(api: Api, session: str) -> None:
    api.put(session, "target.txt", b"original")
    made = api.execute(
        "import os\nos.chdir('/workspace')\n"
        "os.symlink('/etc/passwd', 'passwd')\nos.symlink('/opt/penny/sandbox_runtime/protocol.py', 'runtime.py')\n"
        "os.symlink('/workspace/target.txt', 'alias.txt')\nos.symlink('/etc', 'etc')\n"
        "os.mkfifo('pipe')\nos.mkdir('folder')\nsorted(os.listdir('.'))", sessionId=session)
    assert made["status"] == "success", made["error"]
    # A bare "../" is resolved by the HTTP client itself (the URL names another route, 404): nothing served.
    assert b"root:" not in api.get(session, "../../etc/passwd").content
    attempts = ["..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd", "folder/..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd",
                "passwd", "runtime.py", "etc/passwd", "alias.txt", "pipe", "folder"]
    for path in attempts:
        started = time.monotonic()
        response = api.get(session, path)
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert b"root:" not in response.content and b"ProtocolError" not in response.content
        assert time.monotonic() - started < 30  # the FIFO was never opened for reading (it would block)
        written = api.put(session, path, b"overwritten")
        assert written.status_code == 400, (path, written.text)
        if path != "folder":  # an empty directory may be removed (below, it is still there)
            assert api.call("DELETE", f"/sessions/{session}/files/{path}").status_code == 400, path
    for path in ("..", "/etc", "etc", "passwd"):
        assert api.call("GET", f"/sessions/{session}/files", params={"path": path}).status_code == 400, path
    after = api.execute("import os\n(sorted(os.listdir('/workspace')), open('/workspace/target.txt').read(), "
                        "os.path.islink('/workspace/passwd'), os.path.exists('/workspace/pipe'))", sessionId=session)
    assert ast.literal_eval(after["result"]["repr"]) == (
        ["alias.txt", "etc", "folder", "passwd", "pipe", "runtime.py", "target.txt"], "original", True, True)
    assert api.get(session, "target.txt").content == b"original"


def test_another_tenant_gets_404_and_changes_nothing(files_cluster: Cluster, api: Api, session: str) -> None:
    api.put(session, "mine.txt", b"mine")
    other = Api(files_cluster.url, KEY_B)
    assert other.call("GET", f"/sessions/{session}/files").status_code == 404
    assert other.get(session, "mine.txt").status_code == 404
    assert other.put(session, "mine.txt", b"theirs").status_code == 404
    assert other.call("DELETE", f"/sessions/{session}/files/mine.txt").status_code == 404
    assert other.call("POST", f"/sessions/{session}/interrupt").status_code == 404
    assert other.call("POST", f"/sessions/{session}/restart").status_code == 404
    assert api.get(session, "mine.txt").content == b"mine"


def test_file_operations_are_audited_jobs_in_order_with_the_executions(files_cluster: Cluster, api: Api,
                                                                        session: str) -> None:
    job = api.call("POST", "/jobs", json={"code": "import time\ntime.sleep(1)\n"
                                                  "open('/workspace/late.txt', 'w').write('written by code')",
                                          "sessionId": session})
    assert job.status_code == 202
    response = api.get(session, "late.txt")  # queued behind the execution: it sees what the code wrote
    assert response.status_code == 200 and response.content == b"written by code"
    file_job = response.headers["X-Penny-Job-Id"]
    records = requests.get(f"{files_cluster.url}/api/v1/audit", params={"limit": "1000"},
                           headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60).json()["records"]
    by_job = {r["jobId"]: r for r in records}
    execution, read = by_job[job.json()["jobId"]], by_job[file_job]
    assert read["kind"] == "files.get" and read["path"] == "late.txt" and read["sessionId"] == session
    assert read["tenant"] == "acme" and read["status"] == "success"
    assert execution["status"] == "success" and execution["kind"] == "execution"
    assert execution["acceptedMs"] <= read["acceptedMs"] and execution["finishedAt"] <= read["finishedAt"]


def test_stdin_feeds_input_loops_and_ends_with_eof(api: Api, session: str) -> None:
    code = ("total = 0\nwhile True:\n    try:\n        total += int(input())\n    except EOFError:\n        break\n"
            "import sys\n(total, sys.stdin.read())")
    stateless = api.execute(code, stdin="1\n2\n3\n")
    assert stateless["status"] == "success" and stateless["result"]["repr"] == "(6, '')"
    named = api.execute("name = input('name? ')\nf'hi {name}'", stdin="Ada\n", sessionId=session)
    assert named["stdout"] == "name? " and named["result"]["repr"] == "'hi Ada'"
    eof = api.execute("input()", sessionId=session)
    assert eof["status"] == "error" and eof["error"]["type"] == "EOFError"
    assert api.execute("name", sessionId=session)["result"]["repr"] == "'Ada'"


def test_interrupting_fifty_times_at_random_moments_keeps_the_state(api: Api, session: str) -> None:
    api.execute("count = 0\nkept = 'yes'", sessionId=session)
    rng = random.Random(15)
    for attempt in range(50):
        job = api.call("POST", "/jobs", json={"code": "count += 1\nimport time\ntime.sleep(30)", "sessionId": session})
        assert job.status_code == 202
        time.sleep(rng.choice([0, 0, 0.01, 0.05, 0.2, 0.5]))  # the moment to interrupt at, not a wait for anything
        response = api.call("POST", f"/sessions/{session}/interrupt")
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["interrupted"] == job.json()["jobId"] and answer["status"] == "cancelled", (attempt, answer)
        assert answer["sessionState"] in ("kept", None), answer  # None: stopped before it started
    after = api.execute("(kept, count)", sessionId=session)
    kept, count = ast.literal_eval(after["result"]["repr"])
    assert after["sessionState"] == "kept" and kept == "yes" and 0 <= count <= 50
    assert api.view(session)["status"] == "ready"
    assert api.call("POST", f"/sessions/{session}/interrupt").json()["interrupted"] is None  # nothing runs


def test_restart_clears_the_variables_and_keeps_the_files(api: Api, session: str) -> None:
    api.execute("x = 1\nopen('/workspace/kept.txt', 'w').write('still here')", sessionId=session)
    response = api.call("POST", f"/sessions/{session}/restart")
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["sessionId"] == session and view["status"] == "ready" and view["variables"] == {}
    after = api.execute("('x' in globals(), open('/workspace/kept.txt').read())", sessionId=session)
    assert ast.literal_eval(after["result"]["repr"]) == (False, "still here")


def test_the_session_view_tells_the_truth(api: Api) -> None:
    session_id = api.session(variables={"seed": 7})
    view = api.view(session_id)
    assert view["variables"]["seed"]["type"] == "int" and view["executionCount"] == 0
    api.put(session_id, "f.txt", b"x")
    api.ls(session_id)
    assert api.call("PUT", f"/sessions/{session_id}/variables", json={"variables": {"y": 1}}).status_code == 200
    installed = api.call("POST", "/packages/install", json={"sessionId": session_id, "packages": ["tabulate"]})
    assert installed.status_code == 200, installed.text
    api.execute("z = seed * y", sessionId=session_id)
    view = api.view(session_id)
    assert view["executionCount"] == 1
    assert set(view["variables"]) >= {"seed", "y", "z"}
    assert [p.split("==")[0] for p in view["packages"]] == ["tabulate"]
    api.call("DELETE", f"/sessions/{session_id}")


def test_a_stateless_execute_takes_files_in_and_returns_the_output_files(api: Api) -> None:
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(3000)
    result = api.execute(
        "import os, shutil\nrows = open('/workspace/in/data.csv').read().splitlines()\n"
        "os.makedirs('/workspace/out/deep', exist_ok=True)\n"
        "open('/workspace/out/summary.csv', 'w').write(f'rows,{len(rows)}\\n')\n"
        "shutil.copy('/workspace/image.png', '/workspace/out/deep/copy.png')\n"
        "open('/workspace/a.csv', 'wb').write(b'a' * 6 * 1024 * 1024)\n"
        "open('/workspace/b.csv', 'wb').write(b'b' * 6 * 1024 * 1024)\n"
        "os.symlink('/etc/passwd', '/workspace/out/passwd')\nlen(rows)",
        files=[{"path": "in/data.csv", "text": "a,b\n1,2\n3,4\n"},
               {"path": "image.png", "content": base64.b64encode(png).decode()}],
        outputFiles=["*.csv", "out/**"])
    assert result["status"] == "success", result["error"]
    assert result["result"]["repr"] == "3"
    files = {f["path"]: base64.b64decode(f["content"]) for f in result["files"]}
    # 10 MiB in all: a.csv fits, b.csv does not (a note says so); never the link
    assert files == {"a.csv": b"a" * 6 * MIB, "out/summary.csv": b"rows,3\n", "out/deep/copy.png": png}
    assert any("b.csv" in note and "left out" in note for note in result["notes"]), result["notes"]
    after = api.execute("import os\nos.listdir('/workspace')")  # the next job starts clean
    assert after["result"]["repr"] == "[]"
    refused = api.call("POST", "/execute", json={"code": "1", "files": [{"path": "../x", "text": "no"}]})
    assert refused.status_code == 400


def test_the_sdk_and_the_cli_move_files_interrupt_and_restart(files_cluster: Cluster, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from penny_client import SandboxClient, cli

    with SandboxClient(files_cluster.url, KEY_A) as client, client.session() as session:
        assert session.files.upload("in/table.csv", "a,b\n1,2\n") == 8
        assert [(e.name, e.type) for e in session.files.list()] == [("in", "directory")]
        summed = session.run("import pandas as pd\nint(pd.read_csv('/workspace/in/table.csv').b.sum())")
        assert summed.result is not None and summed.result.repr == "2"
        assert session.files.download("in/table.csv", tmp_path / "t.csv") == b"a,b\n1,2\n"
        assert (tmp_path / "t.csv").read_bytes() == b"a,b\n1,2\n"
        session.files.remove("in/table.csv")
        assert session.files.list("in") == []
        job = session.submit("import time\nx = 1\ntime.sleep(30)")
        answer = session.interrupt()
        assert answer["interrupted"] == job.id and answer["status"] == "cancelled"
        assert session.run("y = 2").ok
        info = session.restart()
        assert info.session_id == session.id and dict(info.variables) == {}
        out = client.execute("open('/workspace/r.txt', 'w').write(input())", stdin="echo\n",
                             files={"in.bin": b"\x00\x01"}, output_files=["*.txt"])
        assert [(f.path, f.content) for f in out.files] == [("r.txt", b"echo")]

        local = tmp_path / "local.txt"
        local.write_text("from the cli")
        base = ["--url", files_cluster.url, "--api-key", KEY_A]
        assert cli.main(["session", "upload", session.id, str(local), "docs/local.txt", *base]) == 0
        assert cli.main(["session", "ls", session.id, "docs", *base]) == 0
        assert "local.txt" in capsys.readouterr().out
        assert cli.main(["session", "download", session.id, "docs/local.txt", str(tmp_path / "back.txt"), *base]) == 0
        assert (tmp_path / "back.txt").read_text() == "from the cli"
        source, stdin = tmp_path / "job.py", tmp_path / "stdin.txt"
        source.write_text("import os\nos.makedirs('out', exist_ok=True)\n"
                          "open('out/upper.txt', 'w').write(open('data.txt').read().upper() + input())")
        stdin.write_text("!\n")
        assert cli.main(["run", str(source), "--stdin", str(stdin), "--file", f"{local}:data.txt",
                         "--output-file", "out/**", "--output-dir", str(tmp_path / "results"), *base]) == 0
        assert (tmp_path / "results" / "out" / "upper.txt").read_text() == "FROM THE CLI!"
