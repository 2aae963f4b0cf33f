"""Per-tenant request rates (api.limits) over the API, with the `limits` library counting in (fake)redis."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from core import keys
from core.errors import ConfigError
from core.registry import WorkerRegistry
from core.settings import Settings
from penny_client.errors import Overloaded, error_from_response
from tests.unit.test_api import FakeWorker, assert_envelope, make_client

KEY_A = "a" * 32
KEY_B = "b" * 32
ADMIN = "z" * 32
KEYS = {"penny_api_keys": ((KEY_A, "acme"), (KEY_B, "beta")), "penny_admin_keys": (ADMIN,)}
# Per minute: a test's requests never straddle two windows' worth of budget.
LOW = {"rate_limit_execute": "3/minute", "rate_limit_sessions": "1/minute", "rate_limit_validate": "2/minute"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def low_client(redis_client: fakeredis.FakeRedis, **settings: Any) -> tuple[FlaskClient, FakeWorker]:
    return make_client(redis_client, **{**KEYS, **LOW, "max_queue_depth": 100, **settings})


def assert_rate_limited(response: Any, scope: str, limit: str) -> None:
    body = assert_envelope(response, 429, "overloaded")
    assert body["error"]["details"] == {"reason": "rate_limited", "scope": scope, "limit": limit}
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def job_count(redis_client: fakeredis.FakeRedis) -> int:
    return sum(1 for key in redis_client.scan_iter("penny:job:*") if not key.endswith(b":events"))


def test_execute_endpoints_share_one_budget_and_a_refused_request_runs_nothing(
        redis_client: fakeredis.FakeRedis) -> None:
    client, worker = low_client(redis_client)
    assert client.post("/api/v1/execute", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200
    assert client.post("/api/v1/jobs", json={"code": "2"}, headers=auth(KEY_A)).status_code == 202
    assert client.post("/api/v1/execute/stream", json={"code": "3"}, headers=auth(KEY_A)).status_code == 200
    assert len(worker.enqueued) == 3 and job_count(redis_client) == 3
    for method, path in (("post", "/api/v1/execute"), ("post", "/api/v1/jobs"), ("post", "/api/v1/execute/stream"),
                         ("post", "/api/v1/packages/install")):
        response = getattr(client, method)(path, json={"code": "4", "packages": ["tabulate"]}, headers=auth(KEY_A))
        assert_rate_limited(response, "execute", "3 per 1 minute")
    # The refused requests dispatched no job and stored none.
    assert len(worker.enqueued) == 3 and job_count(redis_client) == 3
    # Another tenant's budget is its own.
    assert client.post("/api/v1/execute", json={"code": "1"}, headers=auth(KEY_B)).status_code == 200


def test_session_creation_and_a_sessions_executions_are_limited(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = low_client(redis_client, rate_limit_execute="2/minute")
    created = client.post("/api/v1/sessions", json={}, headers=auth(KEY_A))
    assert created.status_code != 429
    assert_rate_limited(client.post("/api/v1/sessions", json={}, headers=auth(KEY_A)), "sessions", "1 per 1 minute")
    assert client.post("/api/v1/sessions", json={}, headers=auth(KEY_B)).status_code != 429
    session = {"sessionId": "0" * 32}  # the limit is checked before the session is looked up
    for _ in range(2):
        assert client.post("/api/v1/execute", json={"code": "1", **session}, headers=auth(KEY_A)).status_code != 429
    assert_rate_limited(client.post("/api/v1/execute", json={"code": "1", **session}, headers=auth(KEY_A)),
                        "execute", "2 per 1 minute")
    assert_rate_limited(client.put(f"/api/v1/sessions/{session['sessionId']}/variables",
                                   json={"variables": {"x": 1}}, headers=auth(KEY_A)), "execute", "2 per 1 minute")


def test_validate_is_limited_and_every_request_counts_even_an_invalid_one(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = low_client(redis_client)
    assert client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200
    assert client.post("/api/v1/validate", json={"nope": 1}, headers=auth(KEY_A)).status_code == 400
    assert_rate_limited(client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)),
                        "validate", "2 per 1 minute")
    # Scopes are separate: validate's exhaustion leaves execute's budget alone.
    assert client.post("/api/v1/execute", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200


def test_health_metrics_reads_and_unauthenticated_requests_are_not_limited(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = low_client(redis_client, rate_limit_execute="1/minute", rate_limit_validate="1/minute")
    job = client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A)).get_json()["jobId"]
    assert_rate_limited(client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A)),
                        "execute", "1 per 1 minute")
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get(f"/api/v1/jobs/{job}", headers=auth(KEY_A)).status_code == 200
        assert client.get("/api/v1/sessions", headers=auth(KEY_A)).status_code == 200
        assert client.get("/api/v1/packages", headers=auth(KEY_A)).status_code == 200
        assert client.get("/api/v1/audit", headers=auth(ADMIN)).status_code == 200
        # Without a valid key the answer is 401 before any budget is looked at.
        assert_envelope(client.post("/api/v1/validate", json={"code": "1"}, headers=auth("w" * 32)),
                        401, "unauthorized")
    assert client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200


def test_counters_are_keyed_by_tenant_in_redis_never_by_key(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = low_client(redis_client)
    client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A))
    client.post("/api/v1/validate", json={"code": "1"}, headers=auth(ADMIN))  # admin-only: counted by key id
    names = [name.decode() for name in redis_client.scan_iter(f"{keys.RATE_LIMIT_PREFIX}:*")]
    assert any("tenant:acme" in name for name in names) and any("key:" in name for name in names), names
    assert not any(KEY_A in name or ADMIN in name for name in names)


def test_the_api_processes_share_the_counters(redis_client: fakeredis.FakeRedis) -> None:
    first, _ = low_client(redis_client)
    second, _ = low_client(redis_client)  # another API process on the same Redis
    assert first.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200
    assert second.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200
    assert_rate_limited(first.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)),
                        "validate", "2 per 1 minute")


def test_rate_limit_enabled_false_lifts_every_limit(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = low_client(redis_client, rate_limit_enabled=False)
    for _ in range(5):
        assert client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)).status_code == 200
    assert not list(redis_client.scan_iter(f"{keys.RATE_LIMIT_PREFIX}:*"))


def test_redis_down_is_the_apis_503_not_a_500_nor_an_open_door() -> None:
    server = fakeredis.FakeServer()
    client_redis = fakeredis.FakeRedis(server=server)
    WorkerRegistry(client_redis, ttl_s=60).beat("fake", {"name": "fake", "pool": {"idle": 1}})
    client, _ = low_client(client_redis)
    server.connected = False
    assert_envelope(client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A)), 503, "unavailable")


def test_the_python_client_reads_a_rate_limit_as_overloaded_with_its_retry_after(
        redis_client: fakeredis.FakeRedis) -> None:
    client, _ = low_client(redis_client, rate_limit_validate="1/minute")
    client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A))
    response = client.post("/api/v1/validate", json={"code": "1"}, headers=auth(KEY_A))
    error = error_from_response(response.status_code, response.get_data(), dict(response.headers))
    assert isinstance(error, Overloaded) and error.http_status == 429
    assert error.retry_after_s == float(response.headers["Retry-After"]) and error.details["reason"] == "rate_limited"


def test_rates_are_read_from_the_environment_and_checked() -> None:
    settings = Settings.from_env({"RATE_LIMIT_EXECUTE": "10/second;300/minute", "RATE_LIMIT_SESSIONS": "5/minute",
                                  "RATE_LIMIT_VALIDATE": "100 per second", "RATE_LIMIT_ENABLED": "false"})
    assert (settings.rate_limit_execute, settings.rate_limit_sessions, settings.rate_limit_validate,
            settings.rate_limit_enabled) == ("10/second;300/minute", "5/minute", "100 per second", False)
    for name in ("RATE_LIMIT_EXECUTE", "RATE_LIMIT_SESSIONS", "RATE_LIMIT_VALIDATE"):
        for bad in ("fast", "10/fortnight", ""):
            with pytest.raises(ConfigError, match=name):
                Settings.from_env({name: bad})
