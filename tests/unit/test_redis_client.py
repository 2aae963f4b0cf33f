"""REDIS_URL's credentials and TLS: parsed and checked in Settings, applied by core.redis_client to every client."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import redis

from core import redis_client
from core.errors import ConfigError
from core.redis_client import RedisEndpoint, redacted_url
from core.settings import Settings

PASSWORD = "pa55-w0rd-never-shown"


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("not read before a connection\n")
    return path


def test_the_password_is_masked_and_the_user_kept() -> None:
    assert redacted_url(f"redis://api:{PASSWORD}@redis:6379/0") == "redis://api:***@redis:6379/0"
    assert redacted_url(f"rediss://:{PASSWORD}@10.0.0.5:6380/2") == "rediss://:***@10.0.0.5:6380/2"
    assert redacted_url("redis://localhost:6379/0") == "redis://localhost:6379/0"


def test_settings_keep_the_credentials_in_the_url_but_never_in_repr() -> None:
    settings = Settings.from_env({"REDIS_URL": f"redis://worker:{PASSWORD}@redis:6379/0"})
    assert settings.redis_url == f"redis://worker:{PASSWORD}@redis:6379/0"
    assert PASSWORD not in repr(settings)
    client = redis_client.connect(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("worker", PASSWORD)


@pytest.mark.parametrize("url, message", [
    (f"http://:{PASSWORD}@redis:6379/0", "REDIS_URL must start with redis://, rediss:// (TLS) or unix://"),
    (f"redis://:{PASSWORD}@redis:port/0", "REDIS_URL is not a valid URL"),
    (f"redis://:{PASSWORD}@/0", "REDIS_URL names no host"),
])
def test_a_bad_redis_url_is_refused_without_showing_its_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        Settings.from_env({"REDIS_URL": url})
    assert PASSWORD not in str(raised.value)


def test_tls_files_need_a_rediss_url(pem: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss://"):
        Settings.from_env({"REDIS_URL": "redis://redis:6379/0", "REDIS_TLS_CA_FILE": str(pem)})


def test_a_client_certificate_needs_its_key(pem: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE must be set together"):
        Settings.from_env({"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS_CERT_FILE": str(pem)})


def test_a_missing_tls_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_TLS_CA_FILE must name a readable file"):
        Settings.from_env({"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS_CA_FILE": str(tmp_path / "none.pem")})


def test_rediss_always_verifies_the_server_and_its_host_name(pem: Path) -> None:
    settings = Settings.from_env({"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS_CA_FILE": str(pem),
                                  "REDIS_TLS_CERT_FILE": str(pem), "REDIS_TLS_KEY_FILE": str(pem)})
    options = RedisEndpoint.from_settings(settings).ssl_options()
    assert options == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True, "ssl_ca_certs": str(pem),
                       "ssl_certfile": str(pem), "ssl_keyfile": str(pem)}
    pool = redis_client.connect(settings).connection_pool
    assert pool.connection_class is redis.SSLConnection
    assert pool.connection_kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    # Without a CA file: the system's CAs, still verified.
    assert RedisEndpoint("rediss://redis:6380/0").ssl_options() == {"ssl_cert_reqs": ssl.CERT_REQUIRED,
                                                                     "ssl_check_hostname": True}
    assert RedisEndpoint("redis://redis:6379/0").ssl_options() == {}


def test_the_celery_broker_gets_the_same_tls_options(pem: Path) -> None:
    from workers.celery_app import broker_app

    settings = Settings.from_env({"REDIS_URL": f"rediss://:{PASSWORD}@redis:6380/0", "REDIS_TLS_CA_FILE": str(pem)})
    app = broker_app("test", settings)
    connection = app.connection_for_write()
    # Without broker_use_ssl kombu would fall back to ssl_cert_reqs=CERT_NONE for rediss://.
    assert connection.ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True,
                              "ssl_ca_certs": str(pem)}
    assert connection.password == PASSWORD
    assert PASSWORD not in connection.as_uri()
    plain = broker_app("test", Settings.from_env({"REDIS_URL": "redis://redis:6379/0"}))
    assert not plain.connection_for_write().ssl


class _RefusingClient:
    def __init__(self, error: Exception) -> None:
        self._error = error

    def ping(self) -> bool:
        raise self._error

    def close(self) -> None:
        pass


@pytest.mark.parametrize("error, message", [
    (redis.AuthenticationError("invalid username-password pair or user is disabled."),
     "Redis refused the login .* check the user and password in REDIS_URL"),
    (redis.AuthenticationError("Authentication required."), "Redis refused the login"),
    (redis.ResponseError("NOAUTH Authentication required."), "NOAUTH"),
])
def test_a_refused_login_is_a_config_error_naming_redis_url_without_the_password(
        monkeypatch: pytest.MonkeyPatch, error: Exception, message: str) -> None:
    monkeypatch.setattr(RedisEndpoint, "client", lambda self, **_: _RefusingClient(error))
    endpoint = RedisEndpoint(f"redis://api:{PASSWORD}@redis:6379/0")
    with pytest.raises(ConfigError, match=message) as raised:
        endpoint.verify()
    assert str(raised.value).startswith("REDIS_URL redis://api:***@redis:6379/0: ")
    assert PASSWORD not in str(raised.value)


def test_a_failed_tls_handshake_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    error = redis.ConnectionError("Error 1 connecting to redis:6380. [SSL: CERTIFICATE_VERIFY_FAILED]")
    error.__context__ = ssl.SSLCertVerificationError("certificate verify failed")
    monkeypatch.setattr(RedisEndpoint, "client", lambda self, **_: _RefusingClient(error))
    with pytest.raises(ConfigError, match="the TLS handshake failed .* check REDIS_TLS_CA_FILE"):
        RedisEndpoint(f"rediss://:{PASSWORD}@redis:6380/0").verify()


def test_an_unreachable_redis_is_not_an_error_at_start_up() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert RedisEndpoint(f"redis://:{PASSWORD}@127.0.0.1:{port}/0").verify(timeout_s=1) is False


def test_every_redis_client_is_made_in_core_redis_client() -> None:
    root = Path(__file__).resolve().parents[2]
    makers = ("Redis.from_url(", "Redis(", "StrictRedis(")
    offenders: list[Any] = []
    for folder in ("api", "core", "workers", "deploy", "bench"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "redis_client.py":
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(root)}: {maker}" for maker in makers if maker in text]
    assert not offenders, offenders
