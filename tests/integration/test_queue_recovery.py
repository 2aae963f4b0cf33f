"""Nothing stays queued for ever: what a killed worker or a stopped API leaves between a job's acceptance and
its start is repaired by the real cluster (core.queue_sweep), and every such job ends exactly once.

The moments a job can be stranded at are made exact by putting the state a loss leaves into Redis (a job
stored but in no list, a list entry without its doorbell, a session job without its kick), as the API
would have written it; the one race left to a real SIGKILL (a doorbell a worker had prefetched) is checked
to have happened before the test relies on it.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from core import keys
from core.fair_queue import FairQueue
from core.jobs import JobStore
from core.models import EventType, ExecutionRequest, JobStatus
from core.queue_sweep import ORPHAN_GRACE_MS
from core.sessions import SessionStore
from core.tenants import OPEN_TENANT
from tests.integration.conftest import Cluster, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

SMALL = {"POOL_SIZE": "1", "SESSION_POOL_SIZE": "1", "PRELOAD_MODULES": "json"}
# A doorbell rung two sweeps (~1 s each) after it went missing, plus the job's own run.
RUNS_WITHIN_MS = 15_000
# A due orphan is ended by the next sweep (~1 s); a worker's start is waited for separately.
ENDS_WITHIN_MS = 10_000


@pytest.fixture
def one_job_quota(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    """One worker, and a tenant that may hold one job queued or running (a stranded job would hold it)."""
    with running_cluster("orphan", log_root, TENANT_MAX_ACTIVE_JOBS="1", **SMALL) as running:
        yield running


@pytest.fixture
def small_cluster(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    with running_cluster("queue", log_root, **SMALL) as running:
        yield running


def _store(cluster: Cluster) -> JobStore:
    return JobStore(cluster.stack.redis_client(), retention_s=600)


def _stored(cluster: Cluster, code: str, *, session_id: str | None = None) -> str:
    """A job stored exactly as the API's submit stores it, and not queued: where an API stopped."""
    job_id = uuid.uuid4().hex
    request = ExecutionRequest(code=code, timeout_ms=10_000, tenant=OPEN_TENANT, session_id=session_id)
    assert _store(cluster).create(job_id, request) is not None
    return job_id


def _aged(cluster: Cluster, job_id: str) -> None:
    """As if the job had been created a grace period ago (the sweep gives a job that long to reach its list)."""
    client = cluster.stack.redis_client()
    score = client.zscore(keys.QUEUED_JOBS, job_id)
    assert score is not None, "a stored job is in the queued index"
    client.zadd(keys.QUEUED_JOBS, {job_id: score - ORPHAN_GRACE_MS - 1})


def _worker(cluster: Cluster, name: str) -> Any:
    return next(proc for proc_name, proc in cluster.stack.procs if proc_name == f"worker-{name}")


def _audited(cluster: Cluster, job_id: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{cluster.url}/api/v1/audit", params=params, timeout=60).json()
        records += [record for record in page["records"] if record["jobId"] == job_id]
        if (cursor := page["nextCursor"]) is None:
            return records


def _assert_ended_once(cluster: Cluster, job_id: str, status: JobStatus) -> dict[str, Any]:
    """The job is final with status: one result event (the last), one audit record, its quota released."""
    view = cluster.job(job_id)
    assert view["status"] == status.value and view["result"]["status"] == status.value, view
    events = _store(cluster).read_events(job_id)
    assert [e.type for e in events].count(EventType.RESULT) == 1 and events[-1].type is EventType.RESULT
    audited = _audited(cluster, job_id)
    assert [record["status"] for record in audited] == [status.value], audited
    assert not cluster.stack.redis_client().sismember(keys.tenant_active_jobs_key(OPEN_TENANT), job_id)
    return view


def _final(cluster: Cluster, job_id: str, within_ms: int) -> JobStatus | None:
    """The job's final status once it has one, waiting up to within_ms; None if it is still not final."""
    deadline = time.monotonic() + within_ms / 1000
    while (left_ms := int((deadline - time.monotonic()) * 1000)) > 0:
        # Slices shorter than the client's 5 s socket timeout (a longer block would time the read out).
        if (status := _store(cluster).await_final(job_id, min(2000, left_ms))) is not None:
            return status
    return None


def test_a_job_a_killed_worker_popped_before_its_claim_ends_worker_lost_once(one_job_quota: Cluster) -> None:
    cluster, client = one_job_quota, one_job_quota.stack.redis_client()
    cluster.stack.stop(_worker(cluster, cluster.worker_prefix), sig=signal.SIGKILL)
    # What a worker killed between its pop and its claim left before the two were one step: the job stored
    # and queued by the API, then taken out of its list (and its doorbell acknowledged), still `queued`.
    job_id = _stored(cluster, "print('never')")
    queue = FairQueue(client)
    queue.push(OPEN_TENANT, job_id)
    assert queue.pop() == job_id
    assert client.sismember(keys.tenant_active_jobs_key(OPEN_TENANT), job_id)  # it holds the tenant's one job
    _aged(cluster, job_id)
    cluster.stack.start_worker(f"{cluster.worker_prefix}-2")
    assert _final(cluster, job_id, ENDS_WITHIN_MS) is JobStatus.WORKER_LOST
    view = _assert_ended_once(cluster, job_id, JobStatus.WORKER_LOST)
    assert view["result"]["error"]["type"] == "WorkerLost" and "never ran" in view["result"]["error"]["message"]
    assert [e.type for e in _store(cluster).read_events(job_id)] == [EventType.QUEUED, EventType.RESULT]
    # The tenant's one active job is free again: its next job is accepted and runs.
    answer = cluster.execute("print('after')")
    assert answer["status"] == "success" and answer["stdout"] == "after\n"


def test_a_queued_job_whose_doorbell_never_came_runs_once(small_cluster: Cluster) -> None:
    job_id = _stored(small_cluster, "print('rung')")
    # Queued in its tenant's list, its doorbell never sent (the API stopped) or lost with its worker.
    FairQueue(small_cluster.stack.redis_client()).push(OPEN_TENANT, job_id)
    assert _final(small_cluster, job_id, RUNS_WITHIN_MS) is JobStatus.SUCCESS
    view = _assert_ended_once(small_cluster, job_id, JobStatus.SUCCESS)
    assert view["result"]["stdout"] == "rung\n"
    assert [e.type for e in _store(small_cluster).read_events(job_id)].count(EventType.STARTED) == 1


def test_jobs_whose_doorbell_died_with_a_killed_worker_still_run(small_cluster: Cluster) -> None:
    cluster, client = small_cluster, small_cluster.stack.redis_client()
    busy = cluster.submit("import time\nprint('busy', flush=True)\ntime.sleep(60)")
    for event in cluster.events(busy):
        if event["event"] == "stdout":
            break
    waiting = [cluster.submit("print('waited')") for _ in range(4)]
    # The worker's only thread is busy; Celery acknowledged that job's doorbell and prefetched the next one.
    deadline = time.monotonic() + 10
    while client.llen(keys.SHARED_QUEUE) >= len(waiting):
        assert time.monotonic() < deadline, "the worker never prefetched a doorbell"
        time.sleep(0.05)
    cluster.stack.stop(_worker(cluster, cluster.worker_prefix), sig=signal.SIGKILL)  # the doorbell dies with it
    assert FairQueue(client).depth(OPEN_TENANT) == len(waiting)
    cluster.stack.start_worker(f"{cluster.worker_prefix}-2")
    for job_id in waiting:
        assert _final(cluster, job_id, RUNS_WITHIN_MS) is JobStatus.SUCCESS, job_id
        assert _assert_ended_once(cluster, job_id, JobStatus.SUCCESS)["result"]["stdout"] == "waited\n"
    assert _final(cluster, busy, ENDS_WITHIN_MS) is JobStatus.WORKER_LOST
    _assert_ended_once(cluster, busy, JobStatus.WORKER_LOST)


def test_session_jobs_stored_but_not_listed_end_and_unkicked_ones_run(one_job_quota: Cluster) -> None:
    cluster = one_job_quota
    created = requests.post(f"{cluster.url}/api/v1/sessions", json={}, timeout=60)
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]
    sessions = SessionStore(cluster.stack.redis_client(), _store(cluster), retention_s=600)
    # Stored, never put in the session's list: the API stopped in between.
    orphan = _stored(cluster, "print('never')", session_id=session_id)
    _aged(cluster, orphan)
    assert _final(cluster, orphan, ENDS_WITHIN_MS) is JobStatus.WORKER_LOST
    _assert_ended_once(cluster, orphan, JobStatus.WORKER_LOST)
    # Listed, its kick lost: the session's actor reads its list anyway.
    unkicked = _stored(cluster, "x = 41\nprint(x + 1)", session_id=session_id)
    assert sessions.push_job(session_id, unkicked)
    assert _final(cluster, unkicked, RUNS_WITHIN_MS) is JobStatus.SUCCESS
    assert _assert_ended_once(cluster, unkicked, JobStatus.SUCCESS)["result"]["stdout"] == "42\n"
    answer = cluster.execute("x", sessionId=session_id)  # the session lives on, with the job's state
    assert answer["status"] == "success" and answer["result"]["repr"] == "41"
