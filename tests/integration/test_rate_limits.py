"""Per-tenant request rates and keys as secrets on a real stack: keys from files, low rates from its settings."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.integration.conftest import Cluster, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

KEY_A, KEY_B, ADMIN = (f"{name}-{uuid.uuid4().hex}" for name in ("acme", "beta", "admin"))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def call(cluster: Cluster, method: str, path: str, key: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{cluster.url}{path}", headers=auth(key), timeout=120, **kwargs)


@pytest.fixture(scope="module")
def limited_cluster(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    secrets = log_root / f"secrets-{uuid.uuid4().hex[:8]}"
    secrets.mkdir()
    (secrets / "api-keys").write_text(f"# tenants, as a Docker or Kubernetes secret would mount them\n"
                                      f"{KEY_A}:acme\n\n{KEY_B}:beta\n")
    (secrets / "admin-keys").write_text(f"# admins\n{ADMIN}\n")
    # Per minute: the test's requests stay within one window. LOG_LEVEL=DEBUG: the logs must hold no key.
    with running_cluster("ratelimit", log_root, POOL_SIZE="1", SESSION_POOL_SIZE="1", LOG_LEVEL="DEBUG",
                         PENNY_API_KEYS_FILE=str(secrets / "api-keys"),
                         PENNY_ADMIN_KEYS_FILE=str(secrets / "admin-keys"),
                         RATE_LIMIT_EXECUTE="3/minute", RATE_LIMIT_VALIDATE="2/minute",
                         RATE_LIMIT_SESSIONS="1/minute") as running:
        yield running


def assert_rate_limited(response: requests.Response, scope: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "overloaded" and error["details"]["reason"] == "rate_limited", error
    assert error["details"]["scope"] == scope
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def stored_jobs(cluster: Cluster) -> set[str]:
    client = redis.Redis.from_url(cluster.stack.env["REDIS_URL"])
    return {key.decode().split(":")[2] for key in client.scan_iter("penny:job:*") if not key.endswith(b":events")}


def test_a_tenant_over_its_rate_gets_429_and_its_refused_requests_run_nothing(limited_cluster: Cluster) -> None:
    # The keys came from the files: without one nothing is served, with one it is.
    assert requests.post(f"{limited_cluster.url}/api/v1/validate", json={"code": "1"}, timeout=30).status_code == 401
    for _ in range(2):
        assert call(limited_cluster, "POST", "/api/v1/validate", KEY_A, json={"code": "1"}).status_code == 200
    assert_rate_limited(call(limited_cluster, "POST", "/api/v1/validate", KEY_A, json={"code": "1"}), "validate")

    jobs = set()
    for code in ("print(1)", "print(2)"):
        response = call(limited_cluster, "POST", "/api/v1/execute", KEY_A, json={"code": code})
        assert response.status_code == 200 and response.json()["status"] == "success", response.text
        jobs.add(response.json()["jobId"])
    response = call(limited_cluster, "POST", "/api/v1/jobs", KEY_A, json={"code": "print(3)"})
    assert response.status_code == 202, response.text
    jobs.add(response.json()["jobId"])
    assert stored_jobs(limited_cluster) == jobs
    # The API runs several processes: they share the tenant's counters, whichever one answers.
    for path in ("/api/v1/execute", "/api/v1/jobs", "/api/v1/execute/stream", "/api/v1/execute"):
        assert_rate_limited(call(limited_cluster, "POST", path, KEY_A, json={"code": "open('/tmp/ran','w')"}),
                            "execute")
    assert stored_jobs(limited_cluster) == jobs  # no refused request became a job

    assert call(limited_cluster, "POST", "/api/v1/sessions", KEY_A, json={}).status_code == 201
    assert_rate_limited(call(limited_cluster, "POST", "/api/v1/sessions", KEY_A, json={}), "sessions")

    # Another tenant's budget is untouched; health and metrics are never limited.
    response = call(limited_cluster, "POST", "/api/v1/execute", KEY_B, json={"code": "print('beta')"})
    assert response.status_code == 200 and response.json()["stdout"] == "beta\n", response.text
    for _ in range(10):
        assert requests.get(f"{limited_cluster.url}/health", timeout=30).status_code == 200
        assert requests.get(f"{limited_cluster.url}/metrics", timeout=30).status_code == 200


def test_the_python_client_sees_the_rate_limit_as_overloaded(limited_cluster: Cluster) -> None:
    from penny_client import Overloaded, SandboxClient

    with SandboxClient(limited_cluster.url, api_key=KEY_B, retries=0) as client:
        client.validate("1")
        client.validate("1")
        with pytest.raises(Overloaded) as raised:
            client.validate("1")
    assert raised.value.http_status == 429 and raised.value.retry_after_s is not None
    assert raised.value.details["reason"] == "rate_limited"


def test_the_audit_trail_names_keys_by_id_and_no_log_or_record_holds_a_key(limited_cluster: Cluster) -> None:
    # beta's second execution (of 3 a minute): its first was in the test above.
    response = call(limited_cluster, "POST", "/api/v1/execute", KEY_B, json={"code": "print('audited')"})
    assert response.status_code == 200, response.text
    job = response.json()["jobId"]
    records = call(limited_cluster, "GET", "/api/v1/audit", ADMIN, params={"tenant": "beta"}).json()["records"]
    [record] = [r for r in records if r["jobId"] == job]
    assert record["keyId"] == hashlib.sha256(KEY_B.encode()).hexdigest()[:12]

    audit_file = Path(limited_cluster.stack.env["AUDIT_LOG_PATH"])
    deadline = time.monotonic() + 30
    while job not in (audit_file.read_text() if audit_file.exists() else ""):
        assert time.monotonic() < deadline, "the audit file did not receive the record"
        time.sleep(0.2)
    # Every log the stack wrote at DEBUG (API, workers, Redis) and the audit file: no key, in any of them.
    files = [path for path in limited_cluster.stack.log_dir.rglob("*") if path.is_file()] + [audit_file]
    assert any("api" in path.name for path in files), files
    for path in files:
        content = path.read_bytes()
        for secret in (KEY_A, KEY_B, ADMIN):
            assert secret.encode() not in content, f"{path} holds a key"
