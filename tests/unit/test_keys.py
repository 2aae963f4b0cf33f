"""API keys are secrets: compared in constant time, never logged or stored, loadable from files, audited by id."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import fakeredis
import pytest

import core.tenants
from core.errors import ConfigError
from core.settings import Settings
from core.tenants import Caller, Tenants, key_id
from tests.unit.test_api import make_client
from tests.unit.test_tenants import auth

KEY_A = "key-of-acme-" + "a" * 20
KEY_B = "key-of-beta-" + "b" * 20
ADMIN = "admin-key-" + "z" * 22
WRONG = "wrong-key-" + "w" * 22
KEYS = {"penny_api_keys": ((KEY_A, "acme"), (KEY_B, "beta")), "penny_admin_keys": (ADMIN,)}



# -- constant-time comparison -------------------------------------------------------------------------------


def test_every_configured_key_is_compared_in_constant_time_whichever_key_is_presented(
        monkeypatch: pytest.MonkeyPatch) -> None:
    tenants = Tenants(Settings(**KEYS))  # type: ignore[arg-type]
    compared: list[tuple[Any, Any]] = []
    real = core.tenants.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(core.tenants.hmac, "compare_digest", spy)
    for key in (KEY_A, KEY_B, ADMIN, WRONG, KEY_A[:-1] + "b"):
        compared.clear()
        tenants.caller(key)
        # No early exit: all three configured digests are compared, for a match and a miss alike...
        assert len(compared) == 3, key
        # ...and only fixed-length digests, never the presented key itself.
        assert all(isinstance(a, bytes) and len(a) == 32 and len(b) == 32 for a, b in compared)
        assert not any(key.encode() in (a, b) for a, b in compared)


def test_callers_carry_tenant_admin_right_and_key_id_and_the_raw_keys_are_not_kept() -> None:
    both = "tenant-and-admin-" + "q" * 16
    tenants = Tenants(Settings(penny_api_keys=((KEY_A, "acme"), (both, "acme")), penny_admin_keys=(ADMIN, both)))
    assert tenants.caller(KEY_A) == Caller(tenant="acme", admin=False, key_id=key_id(KEY_A))
    assert tenants.caller(ADMIN) == Caller(tenant=None, admin=True, key_id=key_id(ADMIN))
    assert tenants.caller(both) == Caller(tenant="acme", admin=True, key_id=key_id(both))
    for missing in (None, "", WRONG, KEY_A + "x", KEY_A[:-1]):
        assert tenants.caller(missing) is None
    assert not any(secret in repr(vars(tenants)) for secret in (KEY_A, ADMIN, both))
    # Open API (no tenant key): everyone is "default", with no key id.
    assert Tenants(Settings()).caller(None) == Caller(tenant="default", admin=True, key_id=None)


def test_a_key_id_is_a_short_stable_hash_that_does_not_contain_the_key() -> None:
    assert key_id(KEY_A) == key_id(KEY_A) != key_id(KEY_B)
    assert len(key_id(KEY_A)) == 12 and int(key_id(KEY_A), 16) >= 0
    assert key_id(KEY_A) not in KEY_A


# -- never logged, never stored ----------------------------------------------------------------------------


def test_no_key_reaches_the_logs_at_debug(redis_client: fakeredis.FakeRedis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records too (limits', werkzeug's)
    client, _ = make_client(redis_client, rate_limit_validate="1/minute", **KEYS)
    for key in (KEY_A, WRONG, ADMIN):
        client.post("/api/v1/execute", json={"code": "print(1)"}, headers=auth(key))
        client.post("/api/v1/validate", json={"code": "1"}, headers=auth(key))
        client.post("/api/v1/validate", json={"code": "1"}, headers=auth(key))  # over the rate: logged as breached
        client.get("/api/v1/audit", headers=auth(key))
        client.post("/api/v1/jobs", data="{not json", headers={**auth(key), "Content-Type": "application/json"})
    client.post("/api/v1/execute", json={"code": "1"}, headers={"Authorization": f"Basic {KEY_B}"})
    assert any(r.levelno == logging.INFO and "ratelimit" in r.getMessage() for r in caplog.records), (
        "the breach should have been logged (else this test proves nothing about those logs)")
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for secret in (KEY_A, KEY_B, WRONG, ADMIN):
            assert secret not in text, record


def _redis_dump(client: fakeredis.FakeRedis) -> bytes:
    """Every key and value in the Redis: strings, hashes, lists, sets, sorted sets and streams."""
    parts: list[bytes] = []
    for name in client.scan_iter("*"):
        parts.append(name)
        kind = client.type(name).decode()
        value: Any = {"string": client.get, "hash": client.hgetall, "list": lambda n: client.lrange(n, 0, -1),
                      "set": client.smembers, "zset": lambda n: client.zrange(n, 0, -1),
                      "stream": lambda n: client.xrange(n)}[kind](name)
        parts.append(repr(value).encode())
    return b"\n".join(parts)


def test_the_audit_trail_records_the_key_id_and_no_key_is_stored(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client, **KEYS)
    executed = client.post("/api/v1/execute", json={"code": "print(1)"}, headers=auth(KEY_A)).get_json()["jobId"]
    queued = client.post("/api/v1/jobs", json={"code": "2"}, headers=auth(KEY_B)).get_json()["jobId"]
    records = {r["jobId"]: r for r in client.get("/api/v1/audit", headers=auth(ADMIN)).get_json()["records"]}
    assert records[executed]["keyId"] == key_id(KEY_A) and records[executed]["tenant"] == "acme"
    assert records[queued]["keyId"] == key_id(KEY_B) and records[queued]["tenant"] == "beta"
    dump = _redis_dump(redis_client)
    assert key_id(KEY_A).encode() in dump  # the dump does hold the records...
    for secret in (KEY_A, KEY_B, ADMIN):
        assert secret.encode() not in dump  # ...and no key


def test_the_open_api_audits_no_key_id(redis_client: fakeredis.FakeRedis) -> None:
    client, _ = make_client(redis_client)
    job = client.post("/api/v1/execute", json={"code": "1"}).get_json()["jobId"]
    [record] = [r for r in client.get("/api/v1/audit").get_json()["records"] if r["jobId"] == job]
    assert record["keyId"] is None and record["tenant"] == "default"


def test_settings_never_show_keys_in_repr_or_in_errors() -> None:
    settings = Settings.from_env({"PENNY_API_KEYS": f"{KEY_A}:acme", "PENNY_ADMIN_KEYS": ADMIN})
    assert KEY_A not in repr(settings) and ADMIN not in repr(settings)
    for env in ({"PENNY_API_KEYS": f"{KEY_A}:bad tenant!"}, {"PENNY_API_KEYS": f"{KEY_A}:a,{KEY_A}:b"},
                {"PENNY_ADMIN_KEYS": f"{ADMIN},{ADMIN}"}, {"PENNY_ADMIN_KEYS": "short-secret"}):
        with pytest.raises(ConfigError) as raised:
            Settings.from_env(env)
        assert KEY_A not in str(raised.value) and ADMIN not in str(raised.value) and "short-secret" not in str(
            raised.value)


# -- key files ---------------------------------------------------------------------------------------------


def test_keys_load_from_files_with_comments_and_add_to_the_variables(tmp_path: Path) -> None:
    api_file = tmp_path / "api-keys"
    api_file.write_text(f"# tenants\n\n  {KEY_A}:acme  \n# {WRONG}:nobody\n{ADMIN[:-1]}y:ops\n")
    admin_file = tmp_path / "admin-keys"
    admin_file.write_text(f"# admins\n{ADMIN}\n")
    settings = Settings.from_env({"PENNY_API_KEYS": f"{KEY_B}:beta", "PENNY_API_KEYS_FILE": str(api_file),
                                  "PENNY_ADMIN_KEYS_FILE": str(admin_file)})
    assert settings.penny_api_keys == ((KEY_B, "beta"), (KEY_A, "acme"), (ADMIN[:-1] + "y", "ops"))
    assert settings.penny_admin_keys == (ADMIN,)
    assert not settings.api_open
    tenants = Tenants(settings)
    assert tenants.caller(KEY_A) == Caller(tenant="acme", admin=False, key_id=key_id(KEY_A))
    assert tenants.caller(ADMIN) == Caller(tenant=None, admin=True, key_id=key_id(ADMIN))
    assert tenants.caller(WRONG) is None  # a commented-out key is no key


@pytest.mark.parametrize(("variable", "content", "message"), [
    ("PENNY_API_KEYS_FILE", None, "PENNY_API_KEYS_FILE: cannot read"),
    ("PENNY_API_KEYS_FILE", "directory", "PENNY_API_KEYS_FILE: cannot read"),
    ("PENNY_API_KEYS_FILE", f"# ok\n{KEY_A}:acme\n{KEY_B}\n", "line 3 is not"),
    ("PENNY_API_KEYS_FILE", f"{KEY_A}:acme\n{KEY_A}:beta\n", "appears more than once"),
    ("PENNY_API_KEYS_FILE", f"{KEY_B}:beta\n", "PENNY_API_KEYS and PENNY_API_KEYS_FILE: a key appears more"),
    ("PENNY_API_KEYS_FILE", b"\xff\xfe" + KEY_A.encode(), "is not UTF-8"),
    ("PENNY_ADMIN_KEYS_FILE", None, "PENNY_ADMIN_KEYS_FILE: cannot read"),
    ("PENNY_ADMIN_KEYS_FILE", "short-secret\n", "line 1 is not"),
])
def test_an_unreadable_or_invalid_key_file_stops_start_up_naming_it(
        tmp_path: Path, variable: str, content: str | bytes | None, message: str) -> None:
    path = tmp_path / "keys"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env({"PENNY_API_KEYS": f"{KEY_B}:beta", variable: str(path)})
    for secret in (KEY_A, KEY_B, "short-secret"):
        assert secret not in str(raised.value)


def test_penny_api_stops_at_start_up_on_an_unreadable_key_file(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from api import serve

    monkeypatch.setenv("PENNY_API_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as exited:
        serve.main()
    assert str(exited.value).startswith("penny-api: PENNY_API_KEYS_FILE: cannot read")
