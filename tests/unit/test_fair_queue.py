"""FairQueue: tenants take turns, one job each, whatever their backlog."""

from __future__ import annotations

import fakeredis

from core import keys
from core.fair_queue import FairQueue
from core.jobs import JobStore
from core.models import EventType, ExecutionRequest, JobStatus


def test_a_tenant_with_one_job_is_served_before_anothers_backlog() -> None:
    queue = FairQueue(fakeredis.FakeRedis())
    for n in range(60):
        queue.push("acme", f"acme-{n}")
    queue.pop()  # acme's first job runs
    queue.push("beta", "beta-0")
    assert queue.pop() == "beta-0"  # next, ahead of acme's 59 others


def test_tenants_take_turns_and_each_keeps_its_order() -> None:
    queue = FairQueue(fakeredis.FakeRedis())
    for n in range(3):
        queue.push("acme", f"a{n}")
        queue.push("beta", f"b{n}")
    served = [queue.pop() for _ in range(6)]
    assert queue.pop() is None
    assert [job for job in served if job and job.startswith("a")] == ["a0", "a1", "a2"]
    assert [job for job in served if job and job.startswith("b")] == ["b0", "b1", "b2"]
    # Strict alternation: never two jobs of one tenant while the other has one waiting.
    assert all(served[i][0] != served[i + 1][0] for i in range(5))  # type: ignore[index]


def test_a_tenant_that_keeps_rejoining_cannot_starve_another() -> None:
    queue = FairQueue(fakeredis.FakeRedis())
    for n in range(10):
        queue.push("acme", f"a{n}")
    served = []
    for n in range(10):
        queue.push("beta", f"b{n}")  # beta always has exactly one job waiting when a worker asks
        served.append(queue.pop())
    assert sum(1 for job in served if job and job.startswith("a")) == 5  # every other turn


def test_an_empty_queue_pops_nothing_and_forgets_finished_tenants() -> None:
    client = fakeredis.FakeRedis()
    queue = FairQueue(client)
    assert queue.pop() is None
    queue.push("acme", "a0")
    assert queue.pop() == "a0" and queue.pop() is None
    assert queue.depth("acme") == 0 and client.zcard("penny:fair:ring") == 0


# ---- pop and claim in one step --------------------------------------------------------------------------

def _jobs(client: fakeredis.FakeRedis) -> JobStore:
    return JobStore(client, retention_s=60)


def _queue_job(jobs: JobStore, queue: FairQueue, job_id: str, tenant: str = "acme") -> None:
    assert jobs.create(job_id, ExecutionRequest(code="print(1)", timeout_ms=1000, tenant=tenant)) is not None
    queue.push(tenant, job_id)


def test_a_popped_job_is_claimed_by_the_worker_incarnation_in_the_same_step() -> None:
    client = fakeredis.FakeRedis()
    jobs, queue = _jobs(client), FairQueue(client)
    _queue_job(jobs, queue, "j1")
    claimed = queue.pop_claim(jobs.claimant("w1", incarnation="inc-1"))
    assert claimed is not None and claimed.job_id == "j1" and claimed.request.code == "print(1)"
    record = jobs.get("j1")
    assert record is not None and record.status is JobStatus.RUNNING and record.worker == "w1"
    assert client.hget(keys.job_key("j1"), "incarnation") == b"inc-1"
    assert queue.depth("acme") == 0 and jobs.running_jobs() == {"j1": "w1"}
    assert client.zscore(keys.QUEUED_JOBS, "j1") is None  # no longer queued anywhere
    assert [e.type for e in jobs.read_events("j1")] == [EventType.QUEUED, EventType.STARTED]
    assert jobs.read_events("j1")[1].data == {"jobId": "j1", "worker": "w1"}
    assert queue.pop_claim(jobs.claimant("w2")) is None
    assert jobs.claim("j1", "w2") is None


def test_a_worker_lost_right_after_taking_a_job_leaves_it_running_and_the_reaper_ends_it() -> None:
    client = fakeredis.FakeRedis()
    jobs, queue = _jobs(client), FairQueue(client)
    _queue_job(jobs, queue, "j1")
    assert queue.pop_claim(jobs.claimant("w1", incarnation="inc-1")) is not None
    # The worker dies here: there is no moment at which the job was out of its list but still queued.
    assert jobs.reap_lost_jobs(alive_workers=[]) == ["j1"]
    record = jobs.get("j1")
    assert record is not None and record.status is JobStatus.WORKER_LOST
    assert [e.type for e in jobs.read_events("j1")].count(EventType.RESULT) == 1
    assert not client.sismember(keys.tenant_active_jobs_key("default"), "j1")


def test_entries_of_cancelled_and_expired_jobs_are_dropped_and_the_next_job_taken() -> None:
    client = fakeredis.FakeRedis()
    jobs, queue = _jobs(client), FairQueue(client)
    for job_id in ("cancelled", "expired", "live"):
        _queue_job(jobs, queue, job_id)
    assert jobs.cancel("cancelled") is JobStatus.CANCELLED
    client.delete(keys.job_key("expired"))
    claimed = queue.pop_claim(jobs.claimant("w1"))
    assert claimed is not None and claimed.job_id == "live"
    assert queue.depth("acme") == 0 and client.zcard(keys.FAIR_RING) == 0
    cancelled = jobs.get("cancelled")
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED  # not started by the drop
    assert [e.type for e in jobs.read_events("cancelled")] == [EventType.QUEUED, EventType.RESULT]
    assert jobs.get("expired") is None and jobs.running_jobs() == {"live": "w1"}
    assert queue.pop_claim(jobs.claimant("w1")) is None


def test_a_dropped_entry_does_not_cost_its_tenant_a_turn() -> None:
    client = fakeredis.FakeRedis()
    jobs, queue = _jobs(client), FairQueue(client)
    for job_id in ("a0", "a1", "a2"):
        _queue_job(jobs, queue, job_id, tenant="acme")
    for job_id in ("b0", "b1"):
        _queue_job(jobs, queue, job_id, tenant="beta")
    jobs.cancel("a0")
    served = [claimed.job_id for _ in range(5) if (claimed := queue.pop_claim(jobs.claimant("w1")))]
    assert served == ["a1", "b0", "a2", "b1"]  # acme's cancelled job did not give beta its turn


def test_claimed_jobs_keep_the_tenants_turns() -> None:
    client = fakeredis.FakeRedis()
    jobs, queue = _jobs(client), FairQueue(client)
    for n in range(3):
        _queue_job(jobs, queue, f"a{n}", tenant="acme")
    for n in range(3):
        _queue_job(jobs, queue, f"b{n}", tenant="beta")
    served = [claimed.job_id for _ in range(7) if (claimed := queue.pop_claim(jobs.claimant("w1")))]
    assert served == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_a_withdrawn_job_is_never_claimed() -> None:
    client = fakeredis.FakeRedis()
    jobs, queue = _jobs(client), FairQueue(client)
    _queue_job(jobs, queue, "j1")
    client.hset(keys.job_key("j1"), "withdrawn", "1")  # the queue sweep is ending it (core.queue_sweep)
    assert queue.pop_claim(jobs.claimant("w1")) is None
    assert jobs.claim("j1", "w1") is None
    record = jobs.get("j1")
    assert record is not None and record.status is JobStatus.QUEUED
