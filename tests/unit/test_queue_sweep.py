"""The queue sweep: a queued job with no doorbell is rung for, a job queued in no list ends once."""

from __future__ import annotations

import json

import fakeredis
import pytest

from core import keys
from core.fair_queue import FairQueue
from core.jobs import JobStore
from core.models import EventType, ExecutionRequest, JobStatus
from core.queue_sweep import ORPHAN_ERROR, QueueSweep, SweepReport
from core.sessions import SessionStore

GRACE_MS = 30_000


class Bell:
    """Counts the doorbells a sweep rings."""

    def __init__(self) -> None:
        self.rung = 0

    def __call__(self) -> None:
        self.rung += 1


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def _sweep(sweeper: QueueSweep, client: fakeredis.FakeRedis, bell: Bell, worker: str = "w1") -> SweepReport:
    """One sweep in a new interval (the previous interval's lease is over)."""
    client.delete(keys.QUEUE_SWEEP_LEASE)
    report = sweeper.sweep(worker, bell)
    assert report is not None
    return report


def _create(jobs: JobStore, job_id: str, *, tenant: str = "acme", session_id: str | None = None) -> None:
    request = ExecutionRequest(code="print(1)", timeout_ms=1000, tenant=tenant, session_id=session_id)
    assert jobs.create(job_id, request) is not None


def _age(client: fakeredis.FakeRedis, job_id: str, by_ms: int) -> None:
    """As if the job had been created (or last seen in its list) by_ms earlier."""
    score = client.zscore(keys.QUEUED_JOBS, job_id)
    assert score is not None
    client.zadd(keys.QUEUED_JOBS, {job_id: score - by_ms})


# ---- doorbells ------------------------------------------------------------------------------------------

def test_a_job_whose_doorbell_was_lost_is_rung_for_on_the_next_sweep(client: fakeredis.FakeRedis) -> None:
    jobs, queue, bell = JobStore(client, retention_s=60), FairQueue(client), Bell()
    sweeper = QueueSweep(client, jobs)
    _create(jobs, "j1")
    queue.push("acme", "j1")  # its doorbell never reaches the broker (lost with a worker, or never sent)
    assert _sweep(sweeper, client, bell).rung == 0  # a deficit seen once may be a doorbell on its way
    assert _sweep(sweeper, client, bell).rung == 1
    assert bell.rung == 1


def test_doorbells_waiting_in_the_broker_are_enough(client: fakeredis.FakeRedis) -> None:
    jobs, queue, bell = JobStore(client, retention_s=60), FairQueue(client), Bell()
    sweeper = QueueSweep(client, jobs)
    for job_id in ("j1", "j2"):
        _create(jobs, job_id)
        queue.push("acme", job_id)
        client.rpush(keys.SHARED_QUEUE, "doorbell")
    for _ in range(3):
        _sweep(sweeper, client, bell)
    assert bell.rung == 0


def test_a_deficit_seen_only_once_rings_nothing(client: fakeredis.FakeRedis) -> None:
    jobs, queue, bell = JobStore(client, retention_s=60), FairQueue(client), Bell()
    sweeper = QueueSweep(client, jobs)
    _create(jobs, "j1")
    queue.push("acme", "j1")
    _sweep(sweeper, client, bell)  # between the API's push and its send
    client.rpush(keys.SHARED_QUEUE, "doorbell")  # the doorbell arrives
    _sweep(sweeper, client, bell)
    assert bell.rung == 0


def test_the_sweep_rings_only_the_missing_doorbells_across_tenants(client: fakeredis.FakeRedis) -> None:
    jobs, queue, bell = JobStore(client, retention_s=60), FairQueue(client), Bell()
    sweeper = QueueSweep(client, jobs)
    for n in range(3):
        _create(jobs, f"a{n}", tenant="acme")
        queue.push("acme", f"a{n}")
    for n in range(2):
        _create(jobs, f"b{n}", tenant="beta")
        queue.push("beta", f"b{n}")
    client.rpush(keys.SHARED_QUEUE, "doorbell", "doorbell")  # three of five doorbells were lost
    _sweep(sweeper, client, bell)
    assert _sweep(sweeper, client, bell).rung == 3


def test_one_worker_sweeps_per_interval_however_many_try(client: fakeredis.FakeRedis) -> None:
    jobs, bell = JobStore(client, retention_s=60), Bell()
    sweepers = [QueueSweep(client, jobs) for _ in range(5)]
    reports = [sweeper.sweep(f"w{n}", bell) for n, sweeper in enumerate(sweepers)]
    assert sum(report is not None for report in reports) == 1
    assert client.get(keys.QUEUE_SWEEP_LEASE) == b"w0"
    assert 0 < client.pttl(keys.QUEUE_SWEEP_LEASE) <= 1000


# ---- jobs queued in no list -----------------------------------------------------------------------------

def test_a_job_queued_in_no_list_ends_worker_lost_once_after_the_grace(client: fakeredis.FakeRedis) -> None:
    jobs, bell = JobStore(client, retention_s=60), Bell()
    sweeper = QueueSweep(client, jobs, grace_ms=GRACE_MS)
    _create(jobs, "j1")  # stored, never queued: the API stopped here (or a worker of old took it and died)
    assert _sweep(sweeper, client, bell).ended == []  # within the grace: it may be on its way to its list
    _age(client, "j1", GRACE_MS + 1)
    assert _sweep(sweeper, client, bell).ended == ["j1"]
    record = jobs.get("j1")
    assert record is not None and record.status is JobStatus.WORKER_LOST
    assert record.result is not None and record.result.error == ORPHAN_ERROR
    events = jobs.read_events("j1")
    assert [e.type for e in events] == [EventType.QUEUED, EventType.RESULT]
    assert not client.sismember(keys.tenant_active_jobs_key("acme"), "j1")  # its quota is released
    audited = [json.loads(fields[b"data"]) for _, fields in client.xrange(keys.AUDIT_STREAM)]
    assert [(r["jobId"], r["status"], r["errorType"]) for r in audited] == [("j1", "worker_lost", "WorkerLost")]
    assert not client.hexists(keys.AUDIT_OPEN, "j1")
    # Later sweeps neither end it again nor keep it in the index.
    assert _sweep(sweeper, client, bell).ended == []
    assert client.zscore(keys.QUEUED_JOBS, "j1") is None
    assert len(client.xrange(keys.AUDIT_STREAM)) == 1


def test_a_job_waiting_in_its_list_is_looked_at_again_a_grace_later(client: fakeredis.FakeRedis) -> None:
    jobs, queue, bell = JobStore(client, retention_s=60), FairQueue(client), Bell()
    sweeper = QueueSweep(client, jobs, grace_ms=GRACE_MS)
    _create(jobs, "j1")
    queue.push("acme", "j1")
    _age(client, "j1", GRACE_MS + 1)  # a long wait behind a backlog
    before = client.zscore(keys.QUEUED_JOBS, "j1")
    assert _sweep(sweeper, client, bell).ended == []
    after = client.zscore(keys.QUEUED_JOBS, "j1")
    assert before is not None and after is not None and after > before + GRACE_MS  # seen now
    record = jobs.get("j1")
    assert record is not None and record.status is JobStatus.QUEUED
    claimed = queue.pop_claim(jobs.claimant("w1"))
    assert claimed is not None and claimed.job_id == "j1"
    assert client.zscore(keys.QUEUED_JOBS, "j1") is None


def test_a_session_job_in_no_list_ends_and_one_in_its_sessions_list_waits(client: fakeredis.FakeRedis) -> None:
    jobs, bell = JobStore(client, retention_s=60), Bell()
    sessions = SessionStore(client, jobs, retention_s=60)
    sweeper = QueueSweep(client, jobs, grace_ms=GRACE_MS)
    sessions.reserve("s1", tenant="acme", worker="w1", max_sessions=5, idle_timeout_ms=60_000)
    _create(jobs, "listed", session_id="s1")
    assert sessions.push_job("s1", "listed")
    _create(jobs, "orphan", session_id="s1")  # the API stopped before push_job
    for job_id in ("listed", "orphan"):
        _age(client, job_id, GRACE_MS + 1)
    assert _sweep(sweeper, client, bell).ended == ["orphan"]
    listed = jobs.get("listed")
    assert listed is not None and listed.status is JobStatus.QUEUED


def test_an_orphan_withdrawn_by_a_sweep_that_died_is_never_started_and_ends_on_the_next(
        client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs, queue, bell = JobStore(client, retention_s=60), FairQueue(client), Bell()
    sweeper = QueueSweep(client, jobs, grace_ms=GRACE_MS)
    _create(jobs, "j1")
    _age(client, "j1", GRACE_MS + 1)

    def die(*_args: object, **_kwargs: object) -> bool:
        raise ConnectionError("the sweeping worker stopped")

    with monkeypatch.context() as patch:
        patch.setattr(jobs, "finish_without_running", die)
        with pytest.raises(ConnectionError):
            _sweep(sweeper, client, bell)
    queue.push("acme", "j1")  # the API's push, very late
    assert queue.pop_claim(jobs.claimant("w1")) is None  # withdrawn: no worker starts it
    assert _sweep(sweeper, client, bell).ended == ["j1"]
    record = jobs.get("j1")
    assert record is not None and record.status is JobStatus.WORKER_LOST
    assert [e.type for e in jobs.read_events("j1")] == [EventType.QUEUED, EventType.RESULT]


def test_jobs_that_ended_or_expired_leave_the_index_when_due(client: fakeredis.FakeRedis) -> None:
    jobs, bell = JobStore(client, retention_s=60), Bell()
    sweeper = QueueSweep(client, jobs, grace_ms=GRACE_MS)
    _create(jobs, "cancelled")
    _create(jobs, "expired")
    assert jobs.cancel("cancelled") is JobStatus.CANCELLED
    client.delete(keys.job_key("expired"))
    for job_id in ("cancelled", "expired"):
        _age(client, job_id, GRACE_MS + 1)
    assert _sweep(sweeper, client, bell).ended == []
    assert client.zcard(keys.QUEUED_JOBS) == 0
    assert [e.type for e in jobs.read_events("cancelled")].count(EventType.RESULT) == 1


def test_a_sweep_looks_at_a_bounded_number_of_jobs(client: fakeredis.FakeRedis) -> None:
    jobs, bell = JobStore(client, retention_s=60), Bell()
    sweeper = QueueSweep(client, jobs, grace_ms=GRACE_MS, checked_per_sweep=2)
    for n in range(5):
        _create(jobs, f"j{n}")
        _age(client, f"j{n}", GRACE_MS + 1)
    ended = [job_id for _ in range(3) for job_id in _sweep(sweeper, client, bell).ended]
    assert sorted(ended) == [f"j{n}" for n in range(5)]
