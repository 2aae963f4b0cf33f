"""Tenants and the audit trail over real HTTP, on a stack with API keys configured."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from core import keys
from tests.integration.conftest import Cluster, assert_every_job_is_audited, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

KEY_A, KEY_B, KEY_SMALL, KEY_LOUD, ADMIN = (uuid.uuid4().hex for _ in range(5))
STORED = 16 * 1024 * 1024  # this stack's TENANT_MAX_STORED_BYTES


class Client:
    """HTTP calls made with one API key."""

    def __init__(self, url: str, key: str | None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", headers=self.headers, timeout=120, **kwargs)

    def execute(self, code: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/api/v1/execute", json={"code": code, **body})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def tenant_cluster(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    with running_cluster("tenants", log_root, POOL_SIZE="2", SESSION_POOL_SIZE="2",
                         PENNY_API_KEYS=f"{KEY_A}:acme,{KEY_B}:beta,{KEY_SMALL}:small,{KEY_LOUD}:loud",
                         PENNY_ADMIN_KEYS=ADMIN, TENANT_QUOTAS="small:1:1",
                         TENANT_MAX_STORED_BYTES=str(STORED)) as running:
        yield running


def test_without_a_valid_key_nothing_is_served(tenant_cluster: Cluster) -> None:
    for key in (None, "wrong-key-of-sufficient-length"):
        response = Client(tenant_cluster.url, key).call("POST", "/api/v1/execute", json={"code": "1"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    assert requests.get(f"{tenant_cluster.url}/health", timeout=30).status_code == 200


def test_one_tenant_cannot_see_use_inspect_cancel_or_delete_anothers_work(tenant_cluster: Cluster) -> None:
    a, b = Client(tenant_cluster.url, KEY_A), Client(tenant_cluster.url, KEY_B)
    session = a.call("POST", "/api/v1/sessions", json={"variables": {"secret": "acme-only"}}).json()["sessionId"]
    job = a.call("POST", "/api/v1/jobs", json={"code": "import time\ntime.sleep(3)\n'done'"}).json()["jobId"]
    attempts = [
        ("GET", f"/api/v1/jobs/{job}", {}), ("GET", f"/api/v1/jobs/{job}/events", {}),
        ("DELETE", f"/api/v1/jobs/{job}", {}), ("GET", f"/api/v1/sessions/{session}", {}),
        ("PUT", f"/api/v1/sessions/{session}/variables", {"json": {"variables": {"secret": "beta"}}}),
        ("POST", "/api/v1/execute", {"json": {"code": "secret", "sessionId": session}}),
        ("POST", "/api/v1/jobs", {"json": {"code": "secret", "sessionId": session}}),
        ("POST", "/api/v1/packages/install", {"json": {"sessionId": session, "packages": ["tabulate"]}}),
        ("DELETE", f"/api/v1/sessions/{session}", {}),
    ]
    for method, path, kwargs in attempts:
        response = b.call(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert "acme-only" not in response.text
    assert session not in [s["sessionId"] for s in b.call("GET", "/api/v1/sessions").json()["sessions"]]
    # Nothing B tried changed A's work: the job ran to its end, the session and its variable are intact.
    finished = a.execute("secret", sessionId=session)
    assert finished["result"]["repr"] == "'acme-only'"
    deadline = time.monotonic() + 60
    while (view := a.call("GET", f"/api/v1/jobs/{job}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert view["status"] == "success" and view["result"]["result"]["repr"] == "'done'"
    assert a.call("DELETE", f"/api/v1/sessions/{session}").status_code == 204


def test_quotas_answer_429_per_tenant(tenant_cluster: Cluster) -> None:
    small, other = Client(tenant_cluster.url, KEY_SMALL), Client(tenant_cluster.url, KEY_B)
    running = small.call("POST", "/api/v1/jobs", json={"code": "import time\ntime.sleep(2)"})
    assert running.status_code == 202
    refused = small.call("POST", "/api/v1/jobs", json={"code": "1"})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert other.execute("1")["status"] == "success"  # another tenant is not held back
    session = small.call("POST", "/api/v1/sessions")
    assert session.status_code == 201
    second = small.call("POST", "/api/v1/sessions")
    assert second.status_code == 429 and second.json()["error"]["details"]["maxSessions"] == 1
    small.call("DELETE", f"/api/v1/sessions/{session.json()['sessionId']}")


def test_a_tenant_whose_jobs_hold_too_many_bytes_in_redis_gets_429_and_stores_nothing(
        tenant_cluster: Cluster) -> None:
    """Results are kept JOB_RETENTION_SECONDS: a tenant printing a MiB per job would fill Redis for everyone
    within minutes. Its jobs' bytes are counted: past TENANT_MAX_STORED_BYTES its next job is refused (429,
    Retry-After until its oldest expires) and stores nothing, while other tenants run as before."""
    loud, other = Client(tenant_cluster.url, KEY_LOUD), Client(tenant_cluster.url, KEY_B)
    client = tenant_cluster.stack.redis_client()
    total_key = keys.tenant_stored_keys("loud")[2]
    code = "print('x' * (1024 * 1024 - 64))"
    refused = None
    for _ in range(STORED // (1024 * 1024)):  # each job holds about 2 MiB (its result and its stdout events)
        response = loud.call("POST", "/api/v1/execute", json={"code": code})
        if response.status_code == 429:
            refused = response
            break
        assert response.status_code == 200 and response.json()["status"] == "success", response.text
    assert refused is not None, "the tenant stored more than its budget"
    details = refused.json()["error"]["details"]
    assert details["maxStoredBytes"] == STORED and details["storedBytes"] > STORED - 4 * 1024 * 1024
    assert 1 <= int(refused.headers["Retry-After"]) <= 600  # JOB_RETENTION_SECONDS of the test stack
    held = int(client.get(total_key))
    jobs = {key for key in client.scan_iter("penny:job:*") if not key.endswith(b":events")}
    again = loud.call("POST", "/api/v1/jobs", json={"code": "1"})
    assert again.status_code == 429
    assert int(client.get(total_key)) == held  # nothing charged for the refused job
    assert {key for key in client.scan_iter("penny:job:*") if not key.endswith(b":events")} == jobs
    assert other.execute("1")["status"] == "success"  # another tenant is not held back


def _audit(cluster: Cluster, **params: Any) -> list[dict[str, Any]]:
    response = Client(cluster.url, ADMIN).call("GET", "/api/v1/audit", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


def test_the_audit_trail_records_every_execution(tenant_cluster: Cluster) -> None:
    a = Client(tenant_cluster.url, KEY_A)
    jobs = {
        a.execute("print('ok')")["jobId"]: "success",
        a.execute("1/0")["jobId"]: "error",
        a.execute("while True:\n    pass", timeout=500)["jobId"]: "timeout",
        a.execute("import socket")["jobId"]: "policy_violation",
    }
    long_job = a.call("POST", "/api/v1/jobs", json={"code": "import time\ntime.sleep(4)"}).json()["jobId"]
    # Still running: it is in the trail already, with its last known state.
    deadline = time.monotonic() + 30
    while not [r for r in _audit(tenant_cluster, status="running") if r["jobId"] == long_job]:
        assert time.monotonic() < deadline, "the running job never appeared in the audit trail"
        time.sleep(0.1)
    assert a.call("DELETE", f"/api/v1/jobs/{long_job}").status_code == 202
    jobs[long_job] = "cancelled"
    session = a.call("POST", "/api/v1/sessions").json()["sessionId"]
    jobs[a.execute("x = 1", sessionId=session)["jobId"]] = "success"
    a.call("DELETE", f"/api/v1/sessions/{session}")

    deadline = time.monotonic() + 30
    while True:
        records = {r["jobId"]: r for r in _audit(tenant_cluster, tenant="acme")}
        if all(records.get(job, {}).get("status") == status for job, status in jobs.items()):
            break
        assert time.monotonic() < deadline, {job: records.get(job, {}).get("status") for job in jobs}
        time.sleep(0.1)
    first = records[next(iter(jobs))]
    assert first["tenant"] == "acme" and first["worker"] and first["codeBytes"] == len("print('ok')")
    assert first["durationMs"] >= 0 and first["cpuMs"] >= 0 and first["peakMemoryBytes"] > 0
    violation = next(records[j] for j, s in jobs.items() if s == "policy_violation")
    assert violation["violation"]["target"] == "socket" and violation["findings"][0]["rule"] == "blocked_import"
    assert {r["jobId"] for r in _audit(tenant_cluster, status="timeout")} >= {
        j for j, s in jobs.items() if s == "timeout"}
    assert not [r for r in _audit(tenant_cluster, tenant="beta") if r["jobId"] in jobs]
    assert Client(tenant_cluster.url, KEY_A).call("GET", "/api/v1/audit").status_code == 403

    # Every job this cluster ever stored has its record (open or final)...
    assert assert_every_job_is_audited(tenant_cluster, headers={"Authorization": f"Bearer {ADMIN}"})
    # ...and reaches the append-only file.
    path = Path(tenant_cluster.stack.env["AUDIT_LOG_PATH"])
    deadline = time.monotonic() + 30
    while True:
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if {j for j in jobs} <= {line["jobId"] for line in lines}:
            break
        assert time.monotonic() < deadline, "the audit file did not receive every record"
        time.sleep(0.2)
    assert len({line["auditId"] for line in lines}) == len(lines)  # each record once


def test_the_sdk_carries_the_key_and_reads_the_audit_trail(tenant_cluster: Cluster) -> None:
    from penny_client import Forbidden, SandboxClient, Unauthorized

    with SandboxClient(tenant_cluster.url, KEY_B) as beta, SandboxClient(tenant_cluster.url, ADMIN) as admin:
        job_id = beta.execute("6 * 7").job_id
        records = admin.audit(tenant="beta", limit=1000)["records"]
        assert [r["status"] for r in records if r["jobId"] == job_id] == ["success"]
        with pytest.raises(Forbidden):
            beta.audit()
    with SandboxClient(tenant_cluster.url) as anonymous, pytest.raises(Unauthorized):
        anonymous.execute("1")
