from __future__ import annotations

import fakeredis
import pytest

from core import keys
from core.jobs import JobStore
from core.models import ExecutionRequest, JobStatus, SessionStatus
from core.registry import WorkerRegistry
from core.sessions import Reservation, SessionStore


@pytest.fixture
def stores() -> tuple[SessionStore, JobStore, fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis()
    jobs = JobStore(client, retention_s=60)
    return SessionStore(client, jobs, retention_s=60), jobs, client


def _reserve(sessions: SessionStore, session_id: str, worker: str = "w1", cap: int = 2) -> bool:
    reservation = sessions.reserve(session_id, tenant="t", worker=worker, max_sessions=cap, idle_timeout_ms=1000)
    return reservation is Reservation.RESERVED


def test_a_tenant_cannot_hold_more_live_sessions_than_its_quota(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, _, _ = stores

    def reserve(session_id: str, tenant: str) -> Reservation:
        return sessions.reserve(session_id, tenant=tenant, worker="w1", max_sessions=10, idle_timeout_ms=1000,
                                max_tenant_sessions=2)

    assert reserve("a", "t") is Reservation.RESERVED and reserve("b", "t") is Reservation.RESERVED
    assert reserve("c", "t") is Reservation.TENANT_FULL
    assert sessions.get("c") is None
    assert reserve("d", "other") is Reservation.RESERVED  # another tenant's quota is its own
    sessions.end("a", SessionStatus.LOST, job_error="lost")  # ended sessions no longer count
    assert reserve("c", "t") is Reservation.RESERVED


def test_reservations_stop_at_the_hosts_cap(stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, _, _ = stores
    assert _reserve(sessions, "a") and _reserve(sessions, "b")
    assert not _reserve(sessions, "c")
    assert sessions.get("c") is None
    assert sessions.count_of_worker("w1") == 2 and sessions.ids_of_tenant("t") == ["a", "b"]
    sessions.delete("a")
    assert _reserve(sessions, "c")


def test_executions_are_recorded_and_expiry_follows_last_use(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, _, _ = stores
    _reserve(sessions, "a")
    sessions.record_execution("a", variables={"x": {"type": "int"}}, lost=False)
    record = sessions.get("a")
    assert record is not None and record.status is SessionStatus.READY and record.execution_count == 1
    assert record.variables == {"x": {"type": "int"}} and record.expires_ms == record.last_used_ms + 1000
    sessions.record_execution("a", variables={}, lost=True)
    lost = sessions.get("a")
    assert lost is not None and lost.status is SessionStatus.LOST


def test_a_deleted_session_is_never_recreated_by_late_updates(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, _, _ = stores
    _reserve(sessions, "a")
    sessions.delete("a")
    sessions.record_execution("a", variables={}, lost=False)
    sessions.set_status("a", SessionStatus.READY)
    sessions.set_resources({"a": {"memoryBytes": 1}})
    assert sessions.get("a") is None


def test_jobs_run_in_acceptance_order(stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, _, _ = stores
    _reserve(sessions, "a")
    for job_id in ("j1", "j2", "j3"):
        assert sessions.push_job("a", job_id)
    assert [sessions.pop_job("a") for _ in range(4)] == ["j1", "j2", "j3", None]


def test_no_job_is_queued_for_a_session_that_ended(stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    # delete() and end() drain the pending jobs once: a job queued after that would never end.
    sessions, _, _ = stores
    _reserve(sessions, "a")
    _reserve(sessions, "b")
    sessions.delete("a")
    sessions.end("b", SessionStatus.LOST, job_error="lost")
    assert not sessions.push_job("a", "j1") and not sessions.push_job("b", "j2")
    assert sessions.pop_job("a") is None and sessions.pop_job("b") is None


def test_sessions_of_a_dead_worker_are_lost_with_their_pending_jobs(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, jobs, client = stores
    registry = WorkerRegistry(client, ttl_s=60)
    registry.beat("dead", {})
    registry.beat("alive", {})
    _reserve(sessions, "a", worker="dead")
    _reserve(sessions, "b", worker="alive")
    jobs.create("j1", ExecutionRequest(code="1", timeout_ms=100, session_id="a"))
    sessions.push_job("a", "j1")
    assert sessions.reap_dead_workers(["alive"]) == ["a"]
    a, b = sessions.get("a"), sessions.get("b")
    assert a is not None and a.status is SessionStatus.LOST
    assert b is not None and b.status is SessionStatus.STARTING
    job = jobs.get("j1")
    assert job is not None and job.status is JobStatus.WORKER_LOST
    assert sessions.count_of_worker("dead") == 0


def test_an_interrupt_targets_the_current_job_else_the_oldest_pending_one_not_ended(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, jobs, _ = stores
    sessions.reserve("s", tenant="t", worker="w", max_sessions=5, idle_timeout_ms=60_000)
    for job_id in ("a", "b", "c"):
        jobs.create(job_id, ExecutionRequest(code="1", timeout_ms=1000, session_id="s"))
        sessions.push_job("s", job_id)
    assert sessions.interrupt_target("s") == "a"  # nothing taken yet: the oldest pending one
    assert sessions.pop_job("s") == "a"
    jobs.claim("a", "w")
    assert sessions.interrupt_target("s") == "a"  # the running one
    record = jobs.get("a")
    assert record is not None
    jobs.finish_without_running(record, JobStatus.SUCCESS)
    jobs.cancel("b")  # cancelled while pending: still listed, skipped
    assert sessions.interrupt_target("s") == "c"


def test_a_session_job_is_taken_and_claimed_in_one_step_skipping_cancelled_ones(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, jobs, client = stores
    sessions.reserve("s", tenant="t", worker="w", max_sessions=5, idle_timeout_ms=60_000)
    for job_id in ("a", "b"):
        jobs.create(job_id, ExecutionRequest(code="1", timeout_ms=1000, session_id="s", tenant="t"))
        assert sessions.push_job("s", job_id)
    jobs.cancel("a")  # cancelled while pending
    claimed = sessions.pop_claim("s", jobs.claimant("w", incarnation="i1"))
    assert claimed is not None and claimed.job_id == "b" and claimed.request.session_id == "s"
    record = jobs.get("b")
    assert record is not None and record.status is JobStatus.RUNNING and record.worker == "w"
    assert client.hget(keys.session_key("s"), "current_job") == b"b"
    assert sessions.interrupt_target("s") == "b"
    assert sessions.pop_claim("s", jobs.claimant("w")) is None
    cancelled = jobs.get("a")
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED


def test_a_session_job_taken_by_a_worker_that_then_died_ends_worker_lost(
        stores: tuple[SessionStore, JobStore, fakeredis.FakeRedis]) -> None:
    sessions, jobs, client = stores
    registry = WorkerRegistry(client, ttl_s=5)
    registry.beat("w", {})
    sessions.reserve("s", tenant="t", worker="w", max_sessions=5, idle_timeout_ms=60_000)
    jobs.create("a", ExecutionRequest(code="1", timeout_ms=1000, session_id="s", tenant="t"))
    assert sessions.push_job("s", "a")
    assert sessions.pop_claim("s", jobs.claimant("w")) is not None
    # The worker dies now, before running it: its session is lost and the taken job ends with it, once.
    client.delete(keys.worker_heartbeat_key("w"))
    assert sessions.reap_dead_workers(alive_workers=[]) == ["s"]
    assert jobs.reap_lost_jobs(alive_workers=[]) == ["a"]
    record = jobs.get("a")
    assert record is not None and record.status is JobStatus.WORKER_LOST
    assert [e.type.value for e in jobs.read_events("a")].count("result") == 1
    assert not client.sismember(keys.tenant_active_jobs_key("t"), "a")
