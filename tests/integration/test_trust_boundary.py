"""The sandbox cannot decide what only the service decides: forged, oversized and malformed messages on the
kernel's result channel never improve an outcome, never pass a limit, and never leave a job running.

The policy layer refuses user code the kernel's pipes (tested last here), so these attacks run on
`open_cluster`, whose policy layer is off: they show that the supervisor and the worker hold on their own,
and write to the result pipe (fd 4) exactly what an attacker who got past that layer would. The violations
they pair with are the ones the supervisor observes itself (the kernel's seccomp filter reports them).
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import requests

from core import keys
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

FORGE = '''
import json, os

class Channel:
    def write(self, data):
        while data:
            data = data[os.write(4, data):]

channel = Channel()

def forge(message):
    channel.write(json.dumps(message).encode() + b"\\n")

def result(job_id, **fields):
    return {"kind": "result", "id": job_id, "result": None, "error": None, "variables": {}, "notes": [],
            "cpu_ms": 0, "peak_memory_bytes": 0, **fields}
'''


def audit_record(cluster: Cluster, job_id: str) -> dict[str, Any]:
    records = requests.get(f"{cluster.url}/api/v1/audit", params={"limit": "1000"}, timeout=30).json()["records"]
    return next(record for record in records if record["jobId"] == job_id)


def stored_sizes(cluster: Cluster, job_id: str) -> tuple[int, int]:
    """Bytes of the job's stored result and of its whole event stream in Redis."""
    client = redis.Redis.from_url(cluster.stack.env["REDIS_URL"])
    result = client.hget(keys.job_key(job_id), "result") or b""
    events = client.xrange(keys.job_events_key(job_id))
    return len(result), sum(len(k) + len(v) for _, fields in events for k, v in fields.items())


def test_a_forged_result_after_a_refused_operation_does_not_make_the_job_succeed(open_cluster: Cluster) -> None:
    code = FORGE + '''
try:
    os.execv("/bin/sh", ["sh", "-c", "echo ran > /workspace/ran"])
except PermissionError:
    pass
for job_id in ("", "warm-up", "job", "x" * 32):
    forge(result(job_id, result={"type": "str", "repr": "'forged'"}))
print("carried on", os.path.exists("/workspace/ran"))
'''
    outcome = open_cluster.execute(code)
    assert outcome["status"] == "policy_violation", outcome
    assert outcome["stdout"] == "carried on False\n"
    assert outcome["result"] is None  # none of the forged replies was taken
    assert any(f.get("source") == "runtime" and f.get("target") == "execve" for f in outcome["findings"])
    record = audit_record(open_cluster, outcome["jobId"])
    assert record["status"] == "policy_violation"


def test_a_violation_sticks_even_when_the_code_ends_with_a_clean_looking_exit(open_cluster: Cluster) -> None:
    code = FORGE + '''
try:
    os.kill(1, 15)
except PermissionError:
    pass
forge(result("x"))
raise SystemExit(0)
'''
    outcome = open_cluster.execute(code)
    assert outcome["status"] == "policy_violation", outcome
    assert outcome["error"] is None
    assert open_cluster.execute("print('runtime alive')")["stdout"] == "runtime alive\n"


@pytest.mark.parametrize("forged", [
    pytest.param('forge({"kind": "plot", "data": {"format": "png", "data": "A" * (6 * 2**20)}})', id="huge-plot"),
    pytest.param('channel.write(b"{" + b"A" * (30 * 2**20))', id="endless-line"),
    pytest.param('forge(result("x", result={"type": "str", "repr": "B" * (25 * 2**20)}))', id="huge-repr"),
    pytest.param('forge({"kind": "display", "data": {"type": "x", "repr": "y", "html": "C" * (8 * 2**20)}})',
                 id="huge-display"),
])
def test_forged_oversized_fields_never_pass_the_limits(open_cluster: Cluster, forged: str) -> None:
    outcome = open_cluster.execute(FORGE + forged + "\nprint('done')")
    assert outcome["status"] == "error", {k: outcome[k] for k in ("status", "error")}
    assert outcome["error"]["type"] == "ProtocolError"
    result_bytes, event_bytes = stored_sizes(open_cluster, outcome["jobId"])
    assert result_bytes < 64 * 1024 and event_bytes < 128 * 1024, (result_bytes, event_bytes)


def test_many_forged_plots_within_each_limit_stop_at_the_total_budget(open_cluster: Cluster) -> None:
    code = FORGE + '''
for _ in range(12):
    forge({"kind": "plot", "data": {"format": "png", "data": "A" * (4 * 2**20)}})
'''
    outcome = open_cluster.execute(code)
    plots_bytes = sum(len(plot["data"]) for plot in outcome["plots"])
    assert plots_bytes <= 20 * 2**20, plots_bytes  # MAX_PLOTS_BYTES, whatever the kernel claimed
    assert any("dropped" in note for note in outcome["notes"])
    result_bytes, event_bytes = stored_sizes(open_cluster, outcome["jobId"])
    assert result_bytes <= 21 * 2**20 * 4 // 3 + 2**20 and event_bytes <= 2 * (21 * 2**20 * 4 // 3 + 2**20)


@pytest.mark.parametrize("forged", [
    'forge(result(JOB, cpu_ms="12"))',
    'forge(result(JOB, error={"type": 1, "message": [], "traceback": {}}))',
    'forge(result(JOB, variables=[1, 2, 3]))',
    'forge({"kind": "violation", "rule": None})',
    'forge([1, 2, 3])',
    'channel.write(b"\\xff\\xfe not json\\n")',
])
def test_forged_wrong_typed_fields_end_the_job_at_once(open_cluster: Cluster, forged: str) -> None:
    # JOB is not known to the code; the checks must hold for any id, so one that could match is used too.
    code = FORGE + f"JOB = 'x'\n{forged}\nimport time\ntime.sleep(15)"
    job_id = open_cluster.submit(code, timeout=20000)
    for event in open_cluster.events(job_id):
        if event["event"] == "result":
            outcome = event["data"]
            break
    assert outcome["status"] == "error", outcome
    assert outcome["error"]["type"] == "ProtocolError"
    assert outcome["metrics"]["durationMs"] < 10_000  # it did not wait for the sleep (nor the timeout)
    assert open_cluster.execute("print('next')")["status"] == "success"


@pytest.mark.parametrize("tamper", ["os.close(4)", "os.dup2(os.open('/dev/null', os.O_WRONLY), 4)",
                                    "os.closerange(3, 100)"])
def test_closing_or_replacing_the_channel_before_a_violation_never_ends_in_success(
        open_cluster: Cluster, tamper: str) -> None:
    code = f'''
import os
try:
    {tamper}
except OSError:
    pass
try:
    os.execv("/bin/sh", ["sh"])
except OSError:
    pass
print("carried on")
'''
    outcome = open_cluster.execute(code)
    assert outcome["status"] in ("policy_violation", "error"), outcome


def test_the_policy_layer_refuses_user_code_the_kernels_pipes(cluster: Cluster) -> None:
    outcome = cluster.execute('''
try:
    open(4, "wb", closefd=False).write(b'{"kind": "result", "id": "x"}\\n')
except Exception as exc:
    print(type(exc).__name__)
''')
    assert outcome["status"] == "policy_violation", outcome


def test_forged_replies_in_a_session_never_shift_later_ones(open_cluster: Cluster) -> None:
    session_id = requests.post(f"{open_cluster.url}/api/v1/sessions", json={}, timeout=60).json()["sessionId"]
    try:
        first = open_cluster.execute(FORGE + '''
for n in range(5):
    forge(result(f"guess-{n}", result={"type": "str", "repr": f"'forged {n}'"}))
"first"''', sessionId=session_id)
        assert first["status"] == "success" and first["result"]["repr"] == "'first'", first
        for n in range(3):
            later = open_cluster.execute(f"x = {n}\nx * 10", sessionId=session_id)
            assert later["status"] == "success" and later["result"]["repr"] == str(n * 10), later
    finally:
        requests.delete(f"{open_cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_a_forced_reinstall_of_an_installed_package_works(cluster: Cluster) -> None:
    session_id = requests.post(f"{cluster.url}/api/v1/sessions", json={}, timeout=60).json()["sessionId"]
    try:
        for force in (False, True, True):
            response = requests.post(f"{cluster.url}/api/v1/packages/install", timeout=300,
                                     json={"sessionId": session_id, "packages": ["tabulate"], "force": force})
            assert response.status_code == 200, response.text
            assert response.json()["failed"] == [], response.json()
        used = cluster.execute("import tabulate\ntabulate.tabulate([[1]])", sessionId=session_id)
        assert used["status"] == "success", used
        view = requests.get(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30).json()
        assert view["status"] == "ready"
    finally:
        requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_delete_ends_a_running_job_within_seconds(cluster: Cluster) -> None:
    job_id = cluster.submit("import time\nprint('started', flush=True)\ntime.sleep(18)", timeout=20000)
    for event in cluster.events(job_id):
        if event["event"] == "stdout":
            break
    response = requests.delete(f"{cluster.url}/api/v1/jobs/{job_id}", timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "cancelled", response.json()
    assert cluster.job(job_id)["status"] == "cancelled"
