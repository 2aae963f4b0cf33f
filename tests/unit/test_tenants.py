"""Tenants over the API (fakeredis, a fake worker): keys, 401, cross-tenant 404, quotas 429, audit access."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from core.errors import ConfigError
from core.settings import Settings
from core.tenants import Tenants
from tests.unit.test_api import assert_envelope, make_client

KEY_A = "a" * 32
KEY_B = "b" * 32
ADMIN = "z" * 32
KEYS = {"penny_api_keys": ((KEY_A, "acme"), (KEY_B, "beta")), "penny_admin_keys": (ADMIN,)}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def tenant_client(redis_client: fakeredis.FakeRedis, **settings: Any) -> FlaskClient:
    client, _ = make_client(redis_client, **{**KEYS, **settings})
    return client


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {KEY_A}"},
                                     {"Authorization": "Bearer "}])
def test_a_missing_or_wrong_key_is_401_with_the_envelope(redis_client: fakeredis.FakeRedis,
                                                         headers: dict[str, str]) -> None:
    client = tenant_client(redis_client)
    for method, path in (("post", "/api/v1/execute"), ("get", "/api/v1/sessions"), ("get", "/api/v1/packages"),
                         ("get", "/api/v1/jobs/abc"), ("post", "/api/v1/validate"), ("get", "/api/v1/audit")):
        response = getattr(client, method)(path, json={"code": "1"}, headers=headers)
        assert_envelope(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/health").status_code in (200, 503)  # health and metrics stay public
    assert client.get("/metrics").status_code == 200


def test_another_tenants_job_is_404_for_every_verb(redis_client: fakeredis.FakeRedis) -> None:
    client = tenant_client(redis_client)
    created = client.post("/api/v1/jobs", json={"code": "secret = 1"}, headers=auth(KEY_A))
    assert created.status_code == 202
    job_id = created.get_json()["jobId"]
    assert client.get(f"/api/v1/jobs/{job_id}", headers=auth(KEY_A)).status_code == 200
    for method, path in (("get", f"/api/v1/jobs/{job_id}"), ("get", f"/api/v1/jobs/{job_id}/events"),
                         ("delete", f"/api/v1/jobs/{job_id}")):
        body = assert_envelope(getattr(client, method)(path, headers=auth(KEY_B)), 404, "not_found")
        assert "secret" not in str(body)
    # The failed cancel by B changed nothing: A's job is still A's and not cancelled.
    assert client.get(f"/api/v1/jobs/{job_id}", headers=auth(KEY_A)).get_json()["status"] == "success"


def test_the_concurrency_quota_answers_429_and_frees_up_when_jobs_end(redis_client: fakeredis.FakeRedis) -> None:
    client, worker = make_client(redis_client, run=False, tenant_quotas=(("acme", 2, 1),), **KEYS)
    for _ in range(2):
        assert client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A)).status_code == 202
    refused = client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A))
    assert_envelope(refused, 429, "overloaded")
    assert int(refused.headers["Retry-After"]) > 0
    assert len(worker.enqueued) == 2  # the refused job was not queued
    # Tenant beta has its own (default) quota.
    assert client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_B)).status_code == 202
    assert client.delete(f"/api/v1/jobs/{worker.enqueued[0]}", headers=auth(KEY_A)).status_code == 202
    assert client.post("/api/v1/jobs", json={"code": "1"}, headers=auth(KEY_A)).status_code == 202


def test_only_admin_keys_read_the_audit_trail(redis_client: fakeredis.FakeRedis) -> None:
    client = tenant_client(redis_client)
    client.post("/api/v1/execute", json={"code": "print(1)"}, headers=auth(KEY_A))
    assert_envelope(client.get("/api/v1/audit", headers=auth(KEY_A)), 403, "forbidden")
    body = client.get("/api/v1/audit", headers=auth(ADMIN)).get_json()
    assert [r["tenant"] for r in body["records"]] == ["acme"]
    # An admin-only key belongs to no tenant: it cannot run code.
    assert_envelope(client.post("/api/v1/execute", json={"code": "1"}, headers=auth(ADMIN)), 403, "forbidden")


def test_with_no_keys_the_api_is_open_and_says_so(redis_client: fakeredis.FakeRedis,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    client, _ = make_client(redis_client)
    assert "OPEN" in caplog.text
    assert client.post("/api/v1/execute", json={"code": "1"}).status_code == 200
    assert client.get("/api/v1/audit").status_code == 200


@pytest.mark.parametrize("name, raw", [
    ("PENNY_API_KEYS", "short:acme"),
    ("PENNY_API_KEYS", f"{KEY_A}"),
    ("PENNY_API_KEYS", f"{KEY_A}:bad tenant"),
    ("PENNY_API_KEYS", f"{KEY_A}:acme,{KEY_A}:beta"),
    ("PENNY_ADMIN_KEYS", "short"),
    ("TENANT_QUOTAS", "acme:0:1"),
    ("TENANT_QUOTAS", "acme:2"),
])
def test_bad_tenant_configuration_stops_start_up_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


def test_keys_map_to_tenants_and_quotas_fall_back_to_the_defaults() -> None:
    settings = Settings.from_env({"PENNY_API_KEYS": f"{KEY_A}:acme, {KEY_B}:beta", "PENNY_ADMIN_KEYS": ADMIN,
                                  "TENANT_MAX_ACTIVE_JOBS": "7", "TENANT_QUOTAS": "beta:3:2"})
    tenants = Tenants(settings)
    assert not tenants.open
    caller = tenants.caller(KEY_A)
    assert caller is not None and caller.tenant == "acme" and not caller.admin
    admin = tenants.caller(ADMIN)
    assert admin is not None and admin.tenant is None and admin.admin
    assert tenants.caller("x" * 32) is None and tenants.caller(None) is None
    assert tenants.quota("acme").max_active_jobs == 7 and tenants.quota("beta").max_sessions == 2
    assert KEY_A not in repr(settings)  # keys never reach a log line through the settings' repr


@pytest.mark.parametrize("params, field", [
    ({"since": "yesterday"}, "since"), ({"until": "2026-13-01"}, "until"), ({"limit": "0"}, "limit"),
    ({"limit": "5000"}, "limit"), ({"status": "done"}, "status"), ({"cursor": "abc"}, "cursor"),
])
def test_bad_audit_filters_are_400_naming_the_field(redis_client: fakeredis.FakeRedis, params: dict[str, str],
                                                    field: str) -> None:
    client = tenant_client(redis_client)
    body = assert_envelope(client.get("/api/v1/audit", query_string=params, headers=auth(ADMIN)), 400,
                           "validation_error")
    assert field in body["error"]["details"]["fields"]


def test_audit_filters_by_time_accept_iso_and_milliseconds(redis_client: fakeredis.FakeRedis) -> None:
    client = tenant_client(redis_client)
    client.post("/api/v1/execute", json={"code": "print(1)"}, headers=auth(KEY_A))
    for since in ("2000-01-01T00:00:00Z", "946684800000"):
        records = client.get("/api/v1/audit", query_string={"since": since}, headers=auth(ADMIN)).get_json()
        assert records["count"] == 1
    future = client.get("/api/v1/audit", query_string={"since": "2999-01-01T00:00:00"}, headers=auth(ADMIN))
    assert future.get_json()["count"] == 0
