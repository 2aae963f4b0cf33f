"""The API against fakeredis and a fake worker: request handling, envelopes, SSE framing and resume."""

from __future__ import annotations

import json
import time
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.schemas import ErrorEnvelopeSchema, ExecutionResultSchema, JobSchema
from core import keys
from core.fair_queue import FairQueue
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
        # A doorbell without arguments (only ids, or nothing, on the broker): the job is in the fair queue.
        assert task == keys.EXECUTE_TASK and queue == keys.SHARED_QUEUE and args == []
        job_id = FairQueue(self.store._redis).pop()
        assert job_id is not None
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
    config = Settings(**{"max_execution_time": 5000, "max_code_bytes": 1000, "max_queue_depth": 3, **settings})
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


# ---- no request body or parameter reaches a 500 (regressions found by tests/unit/test_api_fuzz.py) ----------

def _post_raw(client: FlaskClient, path: str, body: str | bytes) -> Any:
    return client.post(path, data=body, content_type="application/json")


@pytest.mark.parametrize("path", ["/api/v1/execute", "/api/v1/jobs", "/api/v1/validate"])
def test_a_lone_surrogate_in_code_is_400_naming_the_field(redis_client: fakeredis.FakeRedis, path: str) -> None:
    client, worker = make_client(redis_client)
    body = assert_envelope(_post_raw(client, path, '{"code": "x = 1  # \\ud800"}'), 400, "validation_error")
    assert "code" in body["error"]["details"]["fields"] and "\\ud800" in body["error"]["message"]
    assert worker.enqueued == []


def test_a_lone_surrogate_anywhere_is_400_naming_where(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    body = assert_envelope(_post_raw(client, "/api/v1/jobs", '{"code": "1", "variables": {"a": [1, {"\\udfff": 2}]}}'),
                           400, "validation_error")
    assert body["error"]["details"]["fields"] == {"variables": ["not valid Unicode at variables.a[1].\\udfff"]}
    for field in ('"sessionId": "\\ud800"', '"packages": ["\\ud800"]'):
        body = assert_envelope(_post_raw(client, "/api/v1/jobs", '{"code": "1", ' + field + "}"), 400,
                               "validation_error")
        assert field.split(":")[0].strip('"') in body["error"]["details"]["fields"]
    assert worker.enqueued == []


def test_a_surrogate_pair_is_text_and_runs(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    response = _post_raw(client, "/api/v1/jobs", '{"code": "print(\'\\ud83d\\ude00\')"}')
    assert response.status_code == 202 and len(worker.enqueued) == 1
    record = JobStore(redis_client, retention_s=60).get(worker.enqueued[0])
    assert record is not None and record.request.code == "print('\U0001f600')"


@pytest.mark.parametrize("depth", [900, 5000, 100_000])
def test_variables_nested_too_deep_are_400_naming_the_limit(redis_client: fakeredis.FakeRedis, depth: int) -> None:
    client, worker = make_client(redis_client)
    raw = '{"code": "1", "variables": {"a": ' + "[" * depth + "]" * depth + "}}"
    body = assert_envelope(_post_raw(client, "/api/v1/jobs", raw), 400, "validation_error")
    assert body["error"]["message"] == "JSON nesting deeper than 64 levels"
    assert body["error"]["details"]["maxDepth"] == 64 and worker.enqueued == []


def test_nesting_up_to_the_limit_is_accepted(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client)
    inner = 64 - 2  # the body's object and `variables` are two levels
    raw = '{"code": "1", "variables": {"a": ' + "[" * inner + '"[[{\\"[["' + "]" * inner + "}}"  # brackets in a string
    assert _post_raw(client, "/api/v1/jobs", raw).status_code == 202 and len(worker.enqueued) == 1
    too_deep = '{"code": "1", "variables": {"a": ' + "[" * (inner + 1) + "]" * (inner + 1) + "}}"
    assert_envelope(_post_raw(client, "/api/v1/jobs", too_deep), 400, "validation_error")


@pytest.mark.parametrize("raw, words", [
    ('{"code": "1", "variables": {"a": NaN}}', "NaN"),
    ('{"code": "1", "variables": {"a": -Infinity}}', "Infinity"),
    ('{"code": "1", "variables": {"a": 1e999}}', "out of range"),
    ('{"code": "1", "variables": {"a": ' + "9" * 5000 + "}}", "digits"),
    (b'{"code": "\xed\xa0\x80"}', "not UTF-8"),
    (b'{"code": "\xff"}', "not UTF-8"),
    ('{"code": "1",}', "not valid JSON"),
])
def test_what_is_not_json_is_400(redis_client: fakeredis.FakeRedis, raw: str | bytes, words: str) -> None:
    client, worker = make_client(redis_client)
    body = assert_envelope(_post_raw(client, "/api/v1/jobs", raw), 400, "validation_error")
    assert words in body["error"]["message"] and worker.enqueued == []


@pytest.mark.parametrize("code", ["-" * 100_000 + "1", "1" + "+1" * 20_000, "(" * 10_000 + ")" * 10_000,
                                  "lambda:" * 1000 + "1", "x" + ".a" * 50_000])
def test_code_nested_too_deep_to_parse_is_a_syntax_error_finding(redis_client: fakeredis.FakeRedis,
                                                                 code: str) -> None:
    client, _ = make_client(redis_client, max_code_bytes=200_000)
    report = client.post("/api/v1/validate", json={"code": code})
    assert report.status_code == 200
    assert report.get_json()["errors"][0]["rule"] == "syntax_error"
    assert_envelope(client.post("/api/v1/execute", json={"code": code, "strict": True}), 422, "policy_violation")


@pytest.mark.parametrize("event_id", ["١-١", "²-1", "18446744073709551616-0", "1-99999999999999999999"])
def test_a_last_event_id_redis_would_refuse_is_400(redis_client: fakeredis.FakeRedis, event_id: str) -> None:
    client, _ = make_client(redis_client)
    job_id = client.post("/api/v1/jobs", json={"code": "1"}).get_json()["jobId"]
    assert_envelope(client.get(f"/api/v1/jobs/{job_id}/events", query_string={"lastEventId": event_id}), 400,
                    "validation_error")
    last = client.get(f"/api/v1/jobs/{job_id}/events",
                      query_string={"lastEventId": "18446744073709551615-18446744073709551615"})
    assert last.status_code == 200 and last.get_data() == b""


@pytest.mark.parametrize("query", [{"limit": "²"}, {"limit": "9" * 5000}, {"since": "²"}, {"until": "9" * 30},
                                   {"since": "0001-01-01"}, {"cursor": "18446744073709551616-0"},
                                   {"cursor": "١-١"}, {"cursor": "0-0"}])
def test_audit_parameters_redis_would_refuse_are_400(redis_client: fakeredis.FakeRedis,
                                                     query: dict[str, str]) -> None:
    client, _ = make_client(redis_client)
    body = assert_envelope(client.get("/api/v1/audit", query_string=query), 400, "validation_error")
    assert set(body["error"]["details"]["fields"]) == set(query)


def test_a_body_of_escaped_quotes_is_refused_in_linear_time(redis_client: fakeredis.FakeRedis) -> None:
    # An unterminated string of 100,000 escaped quotes: a string pattern that retries from every quote takes
    # minutes here (quadratic); the decoder's scan is linear.
    client, _ = make_client(redis_client)
    started = time.perf_counter()
    assert_envelope(_post_raw(client, "/api/v1/jobs", '{"code": "' + '\\"' * 100_000), 400, "validation_error")
    assert time.perf_counter() - started < 5
