"""The audit trail against fakeredis: records written with the job's transitions, queries, the archive file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fakeredis
import pytest

from core import keys
from core.audit import AuditArchiver, AuditQuery, AuditTrail
from core.jobs import JobStore
from core.models import ExecutionRequest, ExecutionResult, JobStatus, Metrics


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def _request(code: str = "print(1)", tenant: str = "acme") -> ExecutionRequest:
    return ExecutionRequest(code=code, timeout_ms=1000, tenant=tenant, packages=("tabulate",),
                            findings=({"rule": "blocked_import", "line": 1, "col": 0, "severity": "error",
                                       "message": "os"},))


def test_a_job_is_open_until_it_ends_then_its_full_record_is_in_the_stream(client: fakeredis.FakeRedis) -> None:
    store, trail = JobStore(client, retention_s=60), AuditTrail(client)
    assert store.create("j1", _request()) is not None
    [queued] = trail.query(AuditQuery())[0]
    assert queued["status"] == "queued" and queued["tenant"] == "acme"
    assert queued["codeSha256"] == hashlib.sha256(b"print(1)").hexdigest() and queued["codeBytes"] == 8
    assert "code" not in queued  # the code itself only when AUDIT_INCLUDE_CODE
    store.claim("j1", "w1")
    [running] = trail.query(AuditQuery())[0]
    assert running["status"] == "running" and running["worker"] == "w1"
    store.finish(ExecutionResult(job_id="j1", status=JobStatus.ERROR, worker="w1", error={"type": "ValueError"},
                                 metrics=Metrics(duration_ms=12, cpu_ms=9, peak_memory_bytes=4096)))
    records, _ = trail.query(AuditQuery())
    assert len(records) == 1 and client.hlen(keys.AUDIT_OPEN) == 0
    final = records[0]
    assert final["status"] == "error" and final["durationMs"] == 12 and final["cpuMs"] == 9
    assert final["peakMemoryBytes"] == 4096 and final["errorType"] == "ValueError" and final["worker"] == "w1"
    assert final["packages"] == ["tabulate"] and final["findings"][0]["rule"] == "blocked_import"
    # A second finish (a racing cancel) neither changes the job nor writes a second record.
    assert not store.finish(ExecutionResult(job_id="j1", status=JobStatus.CANCELLED))
    assert client.xlen(keys.AUDIT_STREAM) == 1


def test_cancelled_and_lost_jobs_are_recorded_too(client: fakeredis.FakeRedis) -> None:
    store, trail = JobStore(client, retention_s=60), AuditTrail(client)
    store.create("queued", _request())
    store.create("running", _request())
    store.claim("running", "dead-worker")
    assert store.cancel("queued") is JobStatus.CANCELLED
    assert store.reap_lost_jobs(alive_workers=[]) == ["running"]
    statuses = {r["jobId"]: r["status"] for r in trail.query(AuditQuery())[0]}
    assert statuses == {"queued": "cancelled", "running": "worker_lost"}


def test_the_code_itself_is_recorded_when_configured(client: fakeredis.FakeRedis) -> None:
    JobStore(client, retention_s=60, audit_include_code=True).create("j", _request("x = 42"))
    assert AuditTrail(client).query(AuditQuery())[0][0]["code"] == "x = 42"


def test_queries_filter_by_tenant_status_and_time_and_page_with_a_cursor(client: fakeredis.FakeRedis) -> None:
    store, trail = JobStore(client, retention_s=60), AuditTrail(client)
    for index in range(7):
        job_id = f"j{index}"
        store.create(job_id, _request(tenant="acme" if index % 2 else "beta"))
        store.finish(ExecutionResult(job_id=job_id, status=JobStatus.SUCCESS if index < 5 else JobStatus.TIMEOUT))
    store.create("open", _request(tenant="acme"))
    assert [r["jobId"] for r in trail.query(AuditQuery(tenant="acme"))[0]] == ["open", "j5", "j3", "j1"]
    assert [r["jobId"] for r in trail.query(AuditQuery(status="timeout"))[0]] == ["j6", "j5"]
    first, cursor = trail.query(AuditQuery(limit=3))
    assert [r["jobId"] for r in first] == ["open", "j6", "j5"] and cursor is not None
    second, cursor = trail.query(AuditQuery(limit=3, before=cursor))
    assert [r["jobId"] for r in second] == ["j4", "j3", "j2"]
    third, cursor = trail.query(AuditQuery(limit=3, before=cursor))
    assert [r["jobId"] for r in third] == ["j1", "j0"] and cursor is None
    # The open job was accepted after the others ended, possibly in a later millisecond.
    latest_ms = max(int(first[1]["auditId"].split("-")[0]), first[0]["acceptedMs"])
    assert trail.query(AuditQuery(since_ms=latest_ms + 1))[0] == []  # nothing ended (or opened) later
    assert [r["jobId"] for r in trail.query(AuditQuery(since_ms=first[0]["acceptedMs"]))[0]][:1] == ["open"]


def test_the_archiver_writes_each_record_once_and_retries_after_a_failed_write(
        client: fakeredis.FakeRedis, tmp_path: Path) -> None:
    store = JobStore(client, retention_s=60)
    failures: list[int] = []
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the directory should be")
    archiver = AuditArchiver(client, str(blocked / "audit.jsonl"), on_failure=lambda: failures.append(1))
    for index in range(3):
        store.create(f"j{index}", _request())
        store.finish(ExecutionResult(job_id=f"j{index}", status=JobStatus.SUCCESS))
    with pytest.raises(Exception, match="cannot append"):
        archiver.archive_once(block_ms=None)
    assert failures == [1]
    path = tmp_path / "audit.jsonl"
    archiver = AuditArchiver(client, str(path))  # the same consumer (host and pid): it owns the pending ones
    assert archiver.archive_once(block_ms=None) == 3  # the pending records of the failed attempt
    assert archiver.archive_once(block_ms=None) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["jobId"] for line in lines] == ["j0", "j1", "j2"]
    store.create("j3", _request())
    store.finish(ExecutionResult(job_id="j3", status=JobStatus.SUCCESS))
    assert archiver.archive_once(block_ms=None) == 1
    assert len(path.read_text().splitlines()) == 4
