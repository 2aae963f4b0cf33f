"""Session creation and deletion in the audit trail (names and sizes of variables, never values), and
`errorType` kept to a known, bounded set."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest
import redis

from api.app import create_app
from core import keys, session_audit
from core.audit import AuditQuery, AuditTrail
from core.error_types import MAX_USER_TYPE_CHARS, USER_DEFINED, audited_error_type
from core.jobs import JobStore
from core.models import ExecutionRequest, ExecutionResult, JobStatus
from core.settings import Settings
from tests.unit.test_api_fuzz import FakeCluster
from tests.unit.test_tenants import ADMIN, KEY_A, KEY_B, KEYS, auth

SECRET = "hunter2-do-not-log"


@pytest.fixture
def api(redis_client: fakeredis.FakeRedis) -> Any:
    cluster = FakeCluster()
    app = create_app(Settings(**KEYS), client=redis_client, dispatcher=cluster)
    cluster.services = app.extensions["penny"]
    return app.test_client()


def _records(redis_client: fakeredis.FakeRedis) -> list[dict[str, Any]]:
    return AuditTrail(redis_client).query(AuditQuery(limit=1000))[0]


def test_a_session_create_and_delete_are_audited_without_values(api: Any, redis_client: fakeredis.FakeRedis) -> None:
    created = api.post("/api/v1/sessions", json={"variables": {"db_password": SECRET, "rows": [1, 2, 3]},
                                                 "packages": ["tabulate"]}, headers=auth(KEY_A))
    assert created.status_code == 201, created.get_data(as_text=True)
    session_id = created.get_json()["sessionId"]
    assert api.delete(f"/api/v1/sessions/{session_id}", headers=auth(KEY_B)).status_code == 404
    assert api.delete(f"/api/v1/sessions/{session_id}", headers=auth(KEY_A)).status_code == 204
    records = [r for r in _records(redis_client) if r["sessionId"] == session_id]
    assert [r["kind"] for r in records] == ["session_delete", "session_create"]  # newest first
    deleted, create = records
    assert create["tenant"] == "acme" and create["status"] == "created" and create["httpStatus"] == 201
    assert create["variables"] == [{"name": "db_password", "bytes": len(json.dumps(SECRET))},
                                   {"name": "rows", "bytes": len("[1,2,3]")}]
    assert create["packages"] == ["tabulate"] and create["worker"] == "fake" and create["jobId"] is None
    assert deleted["tenant"] == "acme" and deleted["status"] == "deleted" and deleted["previousStatus"] == "ready"
    assert len(records) == 2  # beta's refused delete left no record
    everything = b"".join(value for _, fields in redis_client.xrange(keys.AUDIT_STREAM) for value in fields.values())
    assert SECRET.encode() not in everything
    page = api.get("/api/v1/audit", query_string={"tenant": "acme"}, headers=auth(ADMIN)).get_json()
    assert {r["kind"] for r in page["records"]} >= {"session_create", "session_delete"}


def test_a_session_delete_whose_audit_write_fails_still_destroys_the_sandbox(
        api: Any, redis_client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    session_id = api.post("/api/v1/sessions", json={}, headers=auth(KEY_A)).get_json()["sessionId"]
    cluster = api.application.extensions["penny"].dispatcher
    sent: list[tuple[str, list[Any]]] = []
    monkeypatch.setattr(cluster, "send", lambda task, args, queue: sent.append((task, args)))

    def fail(*_args: object, **_kwargs: object) -> None:
        raise redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(session_audit, "append", fail)
    assert api.delete(f"/api/v1/sessions/{session_id}", headers=auth(KEY_A)).status_code == 204
    assert sent == [(keys.SESSION_DELETE_TASK, [session_id])]


def test_a_refused_session_create_is_audited_as_refused(api: Any, redis_client: fakeredis.FakeRedis) -> None:
    redis_client.delete(keys.WORKERS)  # no worker host: 503
    response = api.post("/api/v1/sessions", json={"variables": {"token": SECRET}}, headers=auth(KEY_A))
    assert response.status_code == 503
    [record] = [r for r in _records(redis_client) if r["kind"] == "session_create"]
    assert record["status"] == "refused" and record["httpStatus"] == 503
    assert record["variables"] == [{"name": "token", "bytes": len(json.dumps(SECRET))}]
    assert SECRET not in json.dumps(record)


@pytest.mark.parametrize("raw, expected", [
    (None, (None, None)),
    ("ValueError", ("ValueError", None)),
    ("PolicyViolationError", ("PolicyViolationError", None)),
    ("WorkerLost", (USER_DEFINED, "WorkerLost")),  # a user's class named like a service failure
    ("SandboxError", (USER_DEFINED, "SandboxError")),
    ("InternalError", (USER_DEFINED, "InternalError")),
    ("Cancelled", (USER_DEFINED, "Cancelled")),
    ("MyError", (USER_DEFINED, "MyError")),
    ("'); DROP TABLE audit; --\n<script>", (USER_DEFINED, "DROPTABLEauditscript")),
    ("x" * 100_000, (USER_DEFINED, "x" * MAX_USER_TYPE_CHARS)),
    ("\n\t", (USER_DEFINED, None)),
    (42, (USER_DEFINED, "42")),
])
def test_error_types_are_a_known_name_or_user_defined_and_bounded(raw: object, expected: tuple) -> None:
    assert audited_error_type(raw) == expected


@pytest.mark.parametrize("raw", ["WorkerLost", "SandboxError", "InternalError", "Cancelled", "ValueError"])
def test_service_error_types_are_kept_when_the_service_produced_them(raw: str) -> None:
    assert audited_error_type(raw, by_service=True) == (raw, None)


def test_a_sandbox_error_named_like_a_service_error_is_stored_user_defined(redis_client: fakeredis.FakeRedis) -> None:
    store = JobStore(redis_client, retention_s=60)
    for job_id in ("j1", "j2"):
        store.create(job_id, ExecutionRequest(code="raise WorkerLost", timeout_ms=1000, tenant="acme"))
        store.claim(job_id, "w1")
    error = {"type": "WorkerLost", "message": "m", "traceback": []}
    store.finish(ExecutionResult(job_id="j1", status=JobStatus.ERROR, worker="w1", error=error))  # from a sandbox
    record = store.get("j2")
    assert record is not None
    store.finish_without_running(record, JobStatus.WORKER_LOST, error=error)  # the service's own
    by_job = {r["jobId"]: r for r in _records(redis_client)}
    assert (by_job["j1"]["errorType"], by_job["j1"]["userErrorType"]) == (USER_DEFINED, "WorkerLost")
    assert (by_job["j2"]["errorType"], by_job["j2"]["userErrorType"]) == ("WorkerLost", None)


def test_the_final_record_stores_the_normalised_error_type(redis_client: fakeredis.FakeRedis) -> None:
    store = JobStore(redis_client, retention_s=60)
    store.create("j1", ExecutionRequest(code="raise X", timeout_ms=1000, tenant="acme"))
    store.claim("j1", "w1")
    store.finish(ExecutionResult(job_id="j1", status=JobStatus.ERROR, worker="w1",
                                 error={"type": "Evil\n" * 1000, "message": "m", "traceback": []}))
    [record] = _records(redis_client)
    assert record["errorType"] == USER_DEFINED and len(record["userErrorType"]) == MAX_USER_TYPE_CHARS
