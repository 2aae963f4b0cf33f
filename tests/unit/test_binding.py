"""Safe binding by default: an open API or an unauthenticated Flower listens on loopback only unless
PENNY_ALLOW_OPEN=true; the shipped compose and k8s files; the security headers of every API response."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import stack
import yaml

from api import serve
from api.app import DATA_CSP
from core.errors import ConfigError
from core.registry import WorkerRegistry
from core.settings import Settings, is_loopback
from tests.unit.test_api import make_client

REPO = Path(__file__).resolve().parents[2]
KEYS = "k" * 16 + ":acme"


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_the_api_and_flower_bind_loopback_by_default() -> None:
    defaults = settings()
    assert (defaults.sandbox_host, defaults.flower_host) == ("127.0.0.1", "127.0.0.1")
    assert defaults.api_open and not defaults.penny_allow_open and defaults.flower_basic_auth == ()
    defaults.check_api_binding()
    defaults.check_flower_binding()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_addresses_need_no_keys(host: str) -> None:
    assert is_loopback(host)
    settings(SANDBOX_HOST=host, FLOWER_HOST=host).check_api_binding()
    settings(SANDBOX_HOST=host, FLOWER_HOST=host).check_flower_binding()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "api.example.org"])
def test_an_open_api_beyond_loopback_is_refused_naming_the_variables(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError) as refused:
        settings(SANDBOX_HOST=host).check_api_binding()
    message = str(refused.value)
    assert f"SANDBOX_HOST={host}" in message
    assert "PENNY_API_KEYS" in message and "PENNY_ALLOW_OPEN=true" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20"])
def test_unauthenticated_flower_beyond_loopback_is_refused_naming_the_variables(host: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(FLOWER_HOST=host).check_flower_binding()
    message = str(refused.value)
    assert f"FLOWER_HOST={host}" in message
    assert "FLOWER_BASIC_AUTH" in message and "PENNY_ALLOW_OPEN=true" in message
    # API keys do not protect Flower: only its own credentials do.
    with pytest.raises(ConfigError):
        settings(FLOWER_HOST=host, PENNY_API_KEYS=KEYS).check_flower_binding()


def test_keys_or_an_explicit_allow_open_permit_any_address() -> None:
    settings(SANDBOX_HOST="0.0.0.0", PENNY_API_KEYS=KEYS).check_api_binding()
    settings(SANDBOX_HOST="0.0.0.0", PENNY_ALLOW_OPEN="true").check_api_binding()
    settings(FLOWER_HOST="0.0.0.0", FLOWER_BASIC_AUTH="admin:longpassword").check_flower_binding()
    settings(FLOWER_HOST="0.0.0.0", PENNY_ALLOW_OPEN="true").check_flower_binding()
    with pytest.raises(ConfigError):
        settings(SANDBOX_HOST="0.0.0.0", PENNY_ALLOW_OPEN="false").check_api_binding()
    # Admin keys alone leave the code-running endpoints open.
    with pytest.raises(ConfigError):
        settings(SANDBOX_HOST="0.0.0.0", PENNY_ADMIN_KEYS="a" * 16).check_api_binding()


@pytest.mark.parametrize(("name", "raw", "words"), [
    ("SANDBOX_HOST", "", "must be an IP address or a host name"),
    ("SANDBOX_HOST", "0.0.0.0:3003", "must be an IP address or a host name"),
    ("FLOWER_HOST", "two words", "must be an IP address or a host name"),
    ("FLOWER_BASIC_AUTH", "admin", "user:password"),
    ("FLOWER_BASIC_AUTH", "admin:short", "at least 8"),
    ("FLOWER_BASIC_AUTH", ":longpassword", "user:password"),
    ("PENNY_ALLOW_OPEN", "maybe", "true or false"),
])
def test_bad_binding_settings_stop_start_up_naming_the_variable(name: str, raw: str, words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(**{name: raw})
    assert str(refused.value).startswith(name) and words in str(refused.value)


def test_flower_credentials_never_appear_in_the_settings_repr() -> None:
    assert "longpassword" not in repr(settings(FLOWER_BASIC_AUTH="admin:longpassword"))


def test_gunicorn_bind_addresses_bracket_ipv6() -> None:
    assert serve.bind_address("127.0.0.1", 3003) == "127.0.0.1:3003"
    assert serve.bind_address("::1", 3003) == "[::1]:3003"
    assert stack.url_host("0.0.0.0") == "127.0.0.1" and stack.url_host("::") == "[::1]"
    assert stack.url_host("10.0.0.5") == "10.0.0.5"


def test_penny_api_refuses_to_serve_open_beyond_loopback_and_starts_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Any] = []
    monkeypatch.setattr(serve, "PennyApi", lambda *args: started.append(args))
    for name in ("PENNY_API_KEYS", "PENNY_ALLOW_OPEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SANDBOX_HOST", "0.0.0.0")
    with pytest.raises(SystemExit) as exited:
        serve.main()
    assert "penny-api: SANDBOX_HOST=0.0.0.0" in str(exited.value.code) and "PENNY_ALLOW_OPEN" in str(exited.value.code)
    assert started == []


def test_penny_api_binds_what_it_is_told_once_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, _settings: Settings, options: dict[str, Any]) -> None:
            started.append(options)

        def run(self) -> None:
            pass

    monkeypatch.setattr(serve, "PennyApi", Recorder)
    monkeypatch.setattr(serve, "verify_redis", lambda _settings: True, raising=False)  # no Redis here
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.delenv("PENNY_API_KEYS", raising=False)
    monkeypatch.delenv("SANDBOX_HOST", raising=False)
    serve.main()
    monkeypatch.setenv("SANDBOX_HOST", "0.0.0.0")
    monkeypatch.setenv("PENNY_ALLOW_OPEN", "true")
    serve.main()
    assert [options["bind"].rsplit(":", 1)[0] for options in started] == ["127.0.0.1", "0.0.0.0"]


def test_make_run_refuses_before_starting_anything() -> None:
    env = {"PATH": "/usr/bin:/bin", "SANDBOX_HOST": "0.0.0.0", "PENNY_LOG_DIR": "/nonexistent/penny-logs",
           "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run([sys.executable, str(REPO / "deploy" / "stack.py")], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "penny: SANDBOX_HOST=0.0.0.0" in done.stderr and "PENNY_ALLOW_OPEN=true" in done.stderr
    assert "API on" not in done.stdout and not Path("/nonexistent/penny-logs").exists()


def test_the_stack_refuses_an_unauthenticated_flower_beyond_loopback(tmp_path: Path) -> None:
    running = stack.Stack({"FLOWER_HOST": "0.0.0.0", "REDIS_URL": "redis://127.0.0.1:1/0"}, tmp_path)
    with pytest.raises(ConfigError, match="FLOWER_HOST=0.0.0.0"):
        running.start_flower(stack.free_port())
    assert running.procs == []


# The shipped deployments: the API listens on the container's interfaces, so it refuses to run without keys
# unless told otherwise; Flower always has credentials from a secret.

def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _k8s(name: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((REPO / "deploy" / "k8s" / f"{name}.yaml").read_text())
    return next(doc for doc in docs if doc and doc["kind"] == "Deployment")


def test_compose_ships_a_keyed_api_and_an_authenticated_flower() -> None:
    services = _compose()["services"]
    api = services["api"]["environment"]
    assert api["SANDBOX_HOST"] == "0.0.0.0" and api["PENNY_ALLOW_OPEN"] == "${PENNY_ALLOW_OPEN:-false}"
    flower = services["flower"]
    # ${VAR:?...}: compose stops with that message when .env does not set it (never an empty password).
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert "FLOWER_UNAUTHENTICATED_API" not in flower["environment"]
    assert not any("auth" in arg for arg in flower["command"]), "credentials belong in the env, not in argv"


def test_k8s_ships_a_keyed_api_and_an_authenticated_flower() -> None:
    api = {env["name"]: env for env in _k8s("api")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert api["SANDBOX_HOST"]["value"] == "0.0.0.0" and "PENNY_ALLOW_OPEN" not in api
    assert "PENNY_API_KEYS_FILE" in api or "secretKeyRef" in api["PENNY_API_KEYS"]["valueFrom"]
    container = _k8s("flower")["spec"]["template"]["spec"]["containers"][0]
    flower = {env["name"]: env for env in container["env"]}
    secret = flower["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]
    assert not secret.get("optional", False), "without the Secret the pod must not start"
    assert "FLOWER_UNAUTHENTICATED_API" not in flower
    assert not any("auth" in arg for arg in container["command"])


# Security headers.

@pytest.fixture
def client() -> Any:
    redis_client = fakeredis.FakeRedis()
    WorkerRegistry(redis_client, ttl_s=60).beat("fake", {"name": "fake", "pool": {"idle": 1}})
    return make_client(redis_client)[0]


def assert_locked_down(response: Any) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'" == DATA_CSP
    assert len(response.headers.getlist("Content-Security-Policy")) == 1


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/health", None),
    ("GET", "/metrics", None),
    ("GET", "/no/such/page", None),
    ("POST", "/api/v1/execute", {"code": "print(1)"}),
    ("POST", "/api/v1/execute", {"code": 1}),
    ("POST", "/api/v1/execute/stream", {"code": "print(1)"}),
    ("GET", "/api/v1/jobs/nope", None),
    ("GET", "/api/v1/jobs/nope/events", None),
])
def test_every_response_carries_the_security_headers(client: Any, method: str, path: str, body: Any) -> None:
    response = client.open(path, method=method, json=body)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert_locked_down(response)


def test_a_page_keeps_its_own_policy(client: Any) -> None:
    app = client.application
    page_csp = "default-src 'self'; frame-ancestors 'none'"

    @app.get("/page-under-test")
    def page() -> Any:
        return "<html></html>", 200, {"Content-Type": "text/html", "Content-Security-Policy": page_csp}

    response = client.get("/page-under-test")
    assert response.headers.getlist("Content-Security-Policy") == [page_csp]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
