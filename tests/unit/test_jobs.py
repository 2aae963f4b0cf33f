from __future__ import annotations

import fakeredis
import pytest

from core import keys
from core.jobs import JobStore
from core.models import EventType, ExecutionRequest, ExecutionResult, JobStatus


@pytest.fixture
def store() -> JobStore:
    return JobStore(fakeredis.FakeRedis(), retention_s=60)


def _request() -> ExecutionRequest:
    return ExecutionRequest(code="print(1)", timeout_ms=1000, variables={"a": 1})


def test_a_created_job_is_queued_with_a_queued_event(store: JobStore) -> None:
    event = store.create("j1", _request())
    record = store.get("j1")
    assert record is not None and record.status is JobStatus.QUEUED
    assert record.request == _request()
    assert [e.type for e in store.read_events("j1")] == [EventType.QUEUED]
    assert store.read_events("j1")[0].event_id == event.event_id


def test_a_job_is_claimed_once_and_its_events_keep_order(store: JobStore) -> None:
    store.create("j1", _request())
    claimed = store.claim("j1", "w1")
    assert claimed is not None and claimed[0] == _request()
    assert store.claim("j1", "w2") is None
    store.append("j1", EventType.STDOUT, {"text": "a"})
    store.append("j1", EventType.STDERR, {"text": "b"})
    assert store.finish(ExecutionResult(job_id="j1", status=JobStatus.SUCCESS, stdout="a", worker="w1"))
    events = store.read_events("j1")
    assert [e.type for e in events] == [EventType.QUEUED, EventType.STARTED, EventType.STDOUT,
                                        EventType.STDERR, EventType.RESULT]
    assert events[-1].data["stdout"] == "a"
    assert store.running_jobs() == {}


def test_nothing_is_written_after_the_result(store: JobStore) -> None:
    store.create("j1", _request())
    store.claim("j1", "w1")
    assert store.finish(ExecutionResult(job_id="j1", status=JobStatus.SUCCESS))
    assert not store.finish(ExecutionResult(job_id="j1", status=JobStatus.ERROR))
    assert store.append("j1", EventType.STDOUT, {"text": "late"}) is None
    record = store.get("j1")
    assert record is not None and record.status is JobStatus.SUCCESS
    assert [e.type for e in store.read_events("j1")][-1] is EventType.RESULT


def test_reading_after_an_event_id_resumes_exactly(store: JobStore) -> None:
    store.create("j1", _request())
    store.claim("j1", "w1")
    for index in range(5):
        store.append("j1", EventType.STDOUT, {"text": str(index)})
    events = store.read_events("j1")
    resumed = store.read_events("j1", after=events[3].event_id)
    assert [e.event_id for e in resumed] == [e.event_id for e in events[4:]]


def test_cancelling_a_queued_job_ends_it_and_it_is_never_claimed(store: JobStore) -> None:
    store.create("j1", _request())
    assert store.cancel("j1") is JobStatus.CANCELLED
    assert store.claim("j1", "w1") is None
    record = store.get("j1")
    assert record is not None and record.status is JobStatus.CANCELLED
    assert record.result is not None and record.result.status is JobStatus.CANCELLED


def test_cancelling_a_running_job_flags_it_and_tells_the_workers(store: JobStore) -> None:
    client = store._redis  # noqa: SLF001 (the fake behind the store)
    pubsub = client.pubsub()
    pubsub.subscribe(keys.CANCEL_CHANNEL)
    store.create("j1", _request())
    store.claim("j1", "w1")
    assert store.cancel("j1") is JobStatus.RUNNING
    record = store.get("j1")
    assert record is not None and record.cancel_requested
    messages = [m for m in iter(lambda: pubsub.get_message(timeout=0.1), None) if m["type"] == "message"]
    assert [m["data"] for m in messages] == [b"j1"]


def test_unknown_jobs_are_none(store: JobStore) -> None:
    assert store.get("nope") is None
    assert store.cancel("nope") is None


def test_jobs_of_dead_workers_end_worker_lost(store: JobStore) -> None:
    store.create("j1", _request())
    store.create("j2", _request())
    store.claim("j1", "dead")
    store.claim("j2", "alive")
    assert store.reap_lost_jobs(["alive"]) == ["j1"]
    lost = store.get("j1")
    assert lost is not None and lost.status is JobStatus.WORKER_LOST
    assert lost.result is not None and lost.result.worker == "dead"
    still = store.get("j2")
    assert still is not None and still.status is JobStatus.RUNNING
