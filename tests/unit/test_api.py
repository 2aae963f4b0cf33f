"""The API against fakeredis and a fake worker: request handling, envelopes, SSE framing and resume."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.schemas import ErrorEnvelopeSchema, ExecutionResultSchema, JobSchema
from core import keys
from core.jobs import JobStore
from core.models import EventType, ExecutionResult, JobStatus
from core.registry import WorkerRegistry
from core.settings import Settings


class FakeWorker:
    """A dispatcher that runs each job at once: prints its code's length, returns it as the value."""

    def __init__(self, store: JobStore, *, run: bool = True) -> None:
        self.store = store
        self.run = run
        self.enqueued: list[str] = []

    def send(self, task: str, args: list[Any], queue: str) -> None:
        assert task == keys.EXECUTE_TASK and queue == keys.SHARED_QUEUE
        job_id = args[0]
        self.enqueued.append(job_id)
        if not self.run:
            return
        claimed = self.store.claim(job_id, "fake")
        assert claimed is not None
        request, _ = claimed
        self.store.append(job_id, EventType.STDOUT, {"text": "out\n"})
        self.store.finish(ExecutionResult(job_id=job_id, status=JobStatus.SUCCESS, stdout="out\n",
                                          result={"type": "int", "repr": str(len(request.code))},
                                          worker="fake"))


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    client = fakeredis.FakeRedis()
    WorkerRegistry(client, ttl_s=60).beat("fake", {"name": "fake", "pool": {"idle": 1}})
    return client


def make_client(redis_client: fakeredis.FakeRedis, *, run: bool = True,
                **settings: Any) -> tuple[FlaskClient, FakeWorker]:
    config = Settings(max_execution_time=5000, max_code_bytes=1000, max_queue_depth=3, **settings)
    worker = FakeWorker(JobStore(redis_client, retention_s=60), run=run)
    app = create_app(config, client=redis_client, dispatcher=worker)
    return app.test_client(), worker


def assert_envelope(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert ErrorEnvelopeSchema().validate(body) == {}
    assert body["error"]["code"] == code
    return body


def test_execute_returns_the_execution_result(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    response = client.post("/api/v1/execute", json={"code": "6*7"})
    assert response.status_code == 200
    body = response.get_json()
    assert ExecutionResultSchema().validate(body) == {}
    assert body["status"] == "success" and body["result"]["repr"] == "3" and body["stdout"] == "out\n"
    assert body["jobId"] == worker.enqueued[0]


@pytest.mark.parametrize("body, field", [
    ({}, "code"),
    ({"code": 5}, "code"),
    ({"code": "  "}, "code"),
    ({"code": "1", "timeout": 0}, "timeout"),
    ({"code": "1", "timeout": 5001}, "timeout"),
    ({"code": "1", "timeout": "10"}, "timeout"),
    ({"code": "1", "variables": [1]}, "variables"),
    ({"code": "1", "variables": {"__x": 1}}, "variables"),
    ({"code": "1", "bogus": 1}, "bogus"),
])
def test_invalid_bodies_are_400_naming_the_field(redis_client: fakeredis.FakeRedis, body: dict[str, Any],
                                                  field: str) -> None:
    client, worker = make_client(redis_client)
    body_json = assert_envelope(client.post("/api/v1/execute", json=body), 400, "validation_error")
    assert field in body_json["error"]["details"]["fields"]
    assert worker.enqueued == []


def test_non_json_is_415_and_malformed_json_400(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    assert_envelope(client.post("/api/v1/execute", data="code=1", content_type="text/plain"), 415,
                    "unsupported_media_type")
    assert_envelope(client.post("/api/v1/execute", data="{nope", content_type="application/json"), 400,
                    "validation_error")


def test_code_over_the_limit_is_413(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    body = assert_envelope(client.post("/api/v1/execute", json={"code": "#" * 1001}), 413, "payload_too_large")
    assert body["error"]["details"]["maxCodeBytes"] == 1000
    assert_envelope(client.post("/api/v1/execute", json={"code": "#" * 5_000_000}), 413, "payload_too_large")


def test_unknown_sessions_are_404_and_disallowed_packages_400(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    assert_envelope(client.post("/api/v1/execute", json={"code": "1", "sessionId": "s"}), 404, "not_found")
    response = client.post("/api/v1/execute", json={"code": "1", "packages": ["left-pad", "tabulate==0.1"]})
    body = assert_envelope(response, 400, "validation_error")
    reasons = {p["name"]: p["reason"] for p in body["error"]["details"]["packages"]}
    assert "allowlist" in reasons["left-pad"] and "outside the allowed range" in reasons["tabulate"]
    assert worker.enqueued == []


def test_the_package_listing_filters_by_search_and_category(redis_client: fakeredis.FakeRedis) -> None:
    redis_client.hset(keys.PREINSTALLED_PACKAGES, mapping={"numpy": "2.4.6"})
    client, _ = make_client(redis_client)
    everything = client.get("/api/v1/packages").get_json()["packages"]
    numpy = next(p for p in everything if p["name"] == "numpy")
    assert numpy["preinstalled"] and numpy["version"] == "2.4.6" and numpy["category"] == "data-science"
    tabulate = next(p for p in everything if p["name"] == "tabulate")
    assert not tabulate["preinstalled"] and tabulate["version"] is None
    visual = client.get("/api/v1/packages?category=visualization").get_json()["packages"]
    assert {p["name"] for p in visual} >= {"matplotlib", "plotly"}
    assert all(p["category"] == "visualization" for p in visual)
    assert [p["name"] for p in client.get("/api/v1/packages?search=TABUL").get_json()["packages"]] == ["tabulate"]


def test_a_full_queue_is_429_with_retry_after(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    redis_client.rpush(keys.SHARED_QUEUE, "a", "b", "c")
    response = client.post("/api/v1/jobs", json={"code": "1"})
    assert_envelope(response, 429, "overloaded")
    assert int(response.headers["Retry-After"]) > 0
    assert worker.enqueued == []


def test_no_live_worker_is_503(redis_client: fakeredis.FakeRedis) -> None:
    WorkerRegistry(redis_client, ttl_s=60).leave("fake")
    client, worker = make_client(redis_client)
    response = client.post("/api/v1/execute", json={"code": "1"})
    assert_envelope(response, 503, "unavailable")
    assert "Retry-After" in response.headers and worker.enqueued == []


def test_unknown_jobs_and_routes_are_404(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    assert_envelope(client.get("/api/v1/jobs/nope"), 404, "not_found")
    assert_envelope(client.get("/api/v1/jobs/nope/events"), 404, "not_found")
    assert_envelope(client.delete("/api/v1/jobs/nope"), 404, "not_found")
    assert_envelope(client.get("/api/v1/nothing"), 404, "not_found")


def test_a_queued_job_can_be_cancelled_and_never_runs(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client, run=False)
    job_id = client.post("/api/v1/jobs", json={"code": "1"}).get_json()["jobId"]
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["status"] == "queued"
    response = client.delete(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 202 and response.get_json()["status"] == "cancelled"
    view = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert JobSchema().validate(view) == {}
    assert view["status"] == "cancelled" and view["result"]["status"] == "cancelled"
    assert JobStore(redis_client, retention_s=60).claim(job_id, "w") is None


def _parse_sse(raw: str) -> list[dict[str, Any]]:
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        events.append({"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])})
    return events


def test_stream_sends_every_event_with_ids_and_resume_repeats_nothing(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    response = client.post("/api/v1/execute/stream", json={"code": "abc"})
    assert response.mimetype == "text/event-stream"
    events = _parse_sse(response.get_data(as_text=True))
    assert [e["event"] for e in events] == ["queued", "started", "stdout", "result"]
    assert events[-1]["data"]["result"]["repr"] == "3"
    job_id = events[0]["data"]["jobId"]
    resumed = _parse_sse(client.get(f"/api/v1/jobs/{job_id}/events",
                                    headers={"Last-Event-ID": events[1]["id"]}).get_data(as_text=True))
    assert resumed == events[2:]
    assert_envelope(client.get(f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "x"}), 400,
                    "validation_error")


def test_a_finished_job_cannot_be_cancelled(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    job_id = client.post("/api/v1/jobs", json={"code": "1"}).get_json()["jobId"]
    assert_envelope(client.delete(f"/api/v1/jobs/{job_id}"), 409, "conflict")


def test_health_reports_workers(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    response = client.get("/health")
    assert response.status_code == 200 and response.get_json()["status"] == "healthy"


def test_validate_answers_findings_and_strict_execute_refuses_with_422(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    report = client.post("/api/v1/validate", json={"code": "import subprocess\nopen('/etc/x')"}).get_json()
    assert report["valid"] is False and report["errors"][0]["rule"] == "blocked_import"
    assert report["warnings"][0]["rule"] == "path_outside_policy"
    strict = client.post("/api/v1/validate", json={"code": "open('/etc/x')", "strict": True}).get_json()
    assert strict["valid"] is False and strict["warnings"] == []
    refused = client.post("/api/v1/execute", json={"code": "import subprocess", "strict": True})
    body = assert_envelope(refused, 422, "policy_violation")
    assert body["error"]["details"]["errors"][0]["rule"] == "blocked_import" and worker.enqueued == []
    assert_envelope(client.post("/api/v1/validate", json={}), 400, "validation_error")


def test_without_strict_the_code_runs_and_the_findings_come_back(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    job_id = client.post("/api/v1/jobs", json={"code": "import subprocess"}).get_json()["jobId"]
    assert worker.enqueued == [job_id]
    record = JobStore(redis_client, retention_s=60).get(job_id)
    assert record is not None and record.request.findings[0]["rule"] == "blocked_import"
