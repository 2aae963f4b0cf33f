"""Ids checked at the route, the tenant checked before a record is read, and Redis type errors not outages."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from core import keys
from core.ids import is_id
from core.jobs import JobStore
from core.models import SessionStatus
from core.sessions import SessionStore
from tests.unit.test_api import assert_envelope
from tests.unit.test_tenants import KEY_A, KEY_B, auth, tenant_client


def test_only_32_lowercase_hex_digits_are_ids() -> None:
    assert is_id("0123456789abcdef" * 2)
    for odd in ("0123456789ABCDEF" * 2, "a" * 31, "a" * 33, "a" * 32 + ":events", "g" * 32, "", None, 7):
        assert not is_id(odd)


def _acme_session(redis_client: fakeredis.FakeRedis) -> str:
    """A ready session of tenant acme on the fake worker."""
    sessions = SessionStore(redis_client, JobStore(redis_client, retention_s=60), retention_s=60)
    session_id = "5e" * 16
    sessions.reserve(session_id, tenant="acme", worker="fake", max_sessions=5, idle_timeout_ms=60_000)
    sessions.set_status(session_id, SessionStatus.READY)
    return session_id


def _odd_ids(job_or_session: str) -> list[str]:
    return [f"{job_or_session}:events", job_or_session.upper(), job_or_session + "0", job_or_session[:-1],
            f"{job_or_session}:x", "x" * 32]


def test_odd_ids_are_404_on_every_verb_and_reach_no_redis_key(redis_client: fakeredis.FakeRedis,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client = tenant_client(redis_client)
    job_id = client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A)).get_json()["jobId"]
    session_id = _acme_session(redis_client)
    commands: list[str] = []
    original = redis_client.execute_command

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        commands.append(" ".join(str(a) for a in args))
        return original(*args, **kwargs)

    monkeypatch.setattr(redis_client, "execute_command", spy)
    for key in (KEY_A, KEY_B):
        for odd in _odd_ids(job_id):
            for method, path in (("get", f"/api/v1/jobs/{odd}"), ("get", f"/api/v1/jobs/{odd}/events"),
                                 ("delete", f"/api/v1/jobs/{odd}")):
                assert_envelope(getattr(client, method)(path, headers=auth(key)), 404, "not_found")
        for odd in _odd_ids(session_id):
            for method, path, body in (("get", f"/api/v1/sessions/{odd}", None),
                                       ("put", f"/api/v1/sessions/{odd}/variables", {"variables": {"a": 1}}),
                                       ("delete", f"/api/v1/sessions/{odd}", None),
                                       ("post", "/api/v1/execute", {"code": "1", "sessionId": odd}),
                                       ("post", "/api/v1/packages/install", {"sessionId": odd,
                                                                            "packages": ["tabulate"]})):
                assert_envelope(getattr(client, method)(path, json=body, headers=auth(key)), 404, "not_found")
    touched = [c for c in commands if job_id in c or session_id in c]
    assert touched == [], touched  # (rate limits and auth use keys of their own)
    assert client.get(f"/api/v1/sessions/{session_id}", headers=auth(KEY_A)).status_code == 200


def test_another_tenants_record_is_refused_before_it_is_loaded(redis_client: fakeredis.FakeRedis,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    client = tenant_client(redis_client)
    job_id = client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A)).get_json()["jobId"]
    session_id = _acme_session(redis_client)
    loaded: list[str] = []
    monkeypatch.setattr(JobStore, "get", lambda self, job: loaded.append(job))
    monkeypatch.setattr(SessionStore, "get", lambda self, session: loaded.append(session))
    for method, path in (("get", f"/api/v1/jobs/{job_id}"), ("get", f"/api/v1/jobs/{job_id}/events"),
                         ("delete", f"/api/v1/jobs/{job_id}"), ("get", f"/api/v1/sessions/{session_id}"),
                         ("delete", f"/api/v1/sessions/{session_id}")):
        assert_envelope(getattr(client, method)(path, headers=auth(KEY_B)), 404, "not_found")
    assert loaded == []
    assert redis_client.hget(keys.session_key(session_id), "status") is not None  # not deleted


def test_a_redis_type_error_is_an_internal_error_not_an_outage(redis_client: fakeredis.FakeRedis,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    client = tenant_client(redis_client)
    job_id = "f" * 32
    redis_client.set(keys.job_key(job_id), "a string, not a hash")  # HGET on it is WRONGTYPE
    response = client.get(f"/api/v1/jobs/{job_id}", headers=auth(KEY_A))
    assert_envelope(response, 500, "internal_error")
    assert "Retry-After" not in response.headers
    assert "unavailable" not in caplog.text and "unreachable" not in response.get_data(as_text=True)


def test_the_spec_gives_path_ids_their_pattern(redis_client: fakeredis.FakeRedis) -> None:
    spec = tenant_client(redis_client).get("/api/v1/openapi.json", headers=auth(KEY_A)).get_json()
    for path, parameter in (("/api/v1/jobs/{job_id}", "job_id"), ("/api/v1/sessions/{session_id}", "session_id")):
        [described] = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == parameter]
        assert described["schema"] == {"type": "string", "pattern": "^[0-9a-f]{32}$"}


@pytest.mark.parametrize("error", [
    redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'. script: abc, on @user_script:3."),
    redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist "
                        "to disk."),
])
def test_a_redis_out_of_memory_or_misconf_is_an_outage(redis_client: fakeredis.FakeRedis,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       error: redis.RedisError) -> None:
    client = tenant_client(redis_client)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(JobStore, "create", refuse)
    response = client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A))
    assert_envelope(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "5"
