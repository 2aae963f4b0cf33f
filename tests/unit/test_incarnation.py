"""Worker incarnations: a restart under the same name ends what the previous process was running."""

from __future__ import annotations

import fakeredis

from core.jobs import JobStore, now_ms
from core.models import ExecutionRequest, JobStatus, SessionStatus
from core.sessions import SessionStore
from workers.incarnation import new_incarnation, reap_previous


def _stores() -> tuple[JobStore, SessionStore]:
    client = fakeredis.FakeRedis()
    jobs = JobStore(client, retention_s=60)
    return jobs, SessionStore(client, jobs, retention_s=60)


def _running(jobs: JobStore, job_id: str, worker: str, incarnation: str) -> None:
    jobs.create(job_id, ExecutionRequest(code="import time; time.sleep(60)", timeout_ms=20_000))
    assert jobs.claim(job_id, worker, incarnation=incarnation) is not None


def test_a_new_incarnation_ends_its_predecessors_jobs_and_sessions_and_nobody_elses() -> None:
    jobs, sessions = _stores()
    old = new_incarnation()
    _running(jobs, "old-job", "w1", old)
    _running(jobs, "other-host-job", "w2", new_incarnation())
    assert sessions.reserve("s1", tenant="acme", worker="w1", max_sessions=4, idle_timeout_ms=60_000).value
    new = new_incarnation()
    assert new != old
    reaped = reap_previous("w1", new, started_ms=now_ms() + 1, jobs=jobs, sessions=sessions)
    assert reaped.job_ids == ["old-job"] and reaped.session_ids == ["s1"]
    old_job, other = jobs.get("old-job"), jobs.get("other-host-job")
    assert old_job is not None and old_job.status is JobStatus.WORKER_LOST
    assert other is not None and other.status is JobStatus.RUNNING
    session = sessions.get("s1")
    assert session is not None and session.status is SessionStatus.LOST


def test_the_reaper_leaves_the_live_incarnations_jobs_alone() -> None:
    jobs, _ = _stores()
    started = now_ms()
    current = new_incarnation()
    _running(jobs, "current-job", "w1", current)
    assert jobs.reap_stale_incarnations({"w1": (current, started)}) == []
    # A job claimed after the start we know of, by an incarnation we have not seen yet, is newer: kept.
    _running(jobs, "newer-job", "w1", new_incarnation())
    assert jobs.reap_stale_incarnations({"w1": (current, started)}) == []
    record = jobs.get("newer-job")
    assert record is not None and record.status is JobStatus.RUNNING


def test_a_session_job_taken_by_the_previous_incarnation_ends_with_its_session_on_restart() -> None:
    jobs, sessions = _stores()
    assert sessions.reserve("s1", tenant="acme", worker="w1", max_sessions=4, idle_timeout_ms=60_000).value
    for job_id in ("taken", "pending"):
        jobs.create(job_id, ExecutionRequest(code="1", timeout_ms=20_000, tenant="acme", session_id="s1"))
        assert sessions.push_job("s1", job_id)
    old = new_incarnation()
    assert sessions.pop_claim("s1", jobs.claimant("w1", incarnation=old)) is not None
    # The process dies before running it and starts again under its name.
    reaped = reap_previous("w1", new_incarnation(), started_ms=now_ms() + 1, jobs=jobs, sessions=sessions)
    assert reaped.job_ids == ["taken"] and reaped.session_ids == ["s1"]
    for job_id in ("taken", "pending"):
        record = jobs.get(job_id)
        assert record is not None and record.status is JobStatus.WORKER_LOST, job_id
