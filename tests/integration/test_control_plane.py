"""The control plane lets no one in: a stack without keys listens on loopback only, and Flower, started with the
command line docker-compose and Kubernetes ship, answers 401 without its credentials and 200 with them.

These stacks run no worker (no Docker needed): Redis, the API and Flower are what is exposed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import stack
import yaml

from tests.conftest import require

pytestmark = [pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
# Settings that would change what the stack binds or whether it authenticates: the tests set their own.
BINDING_VARIABLES = ("SANDBOX_HOST", "FLOWER_HOST", "PENNY_API_KEYS", "PENNY_API_KEYS_FILE", "PENNY_ADMIN_KEYS",
                     "PENNY_ALLOW_OPEN", "FLOWER_BASIC_AUTH", "FLOWER_UNAUTHENTICATED_API")


def outside_address() -> str:
    """An IPv4 address of this machine other than loopback (an interface others may reach it on)."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not ipaddress.ip_address(address.address).is_loopback:
                return str(address.address)
    pytest.fail("this machine has no IPv4 address but loopback: the test would prove nothing")


def connects(host: str, port: int) -> bool:
    """A TCP connection to host:port is accepted."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def listening(procs: list[Any]) -> dict[str, set[str]]:
    """The addresses each stack process (with its children: gunicorn's workers) listens on, by name."""
    found: dict[str, set[str]] = {}
    for name, popen in procs:
        root = psutil.Process(popen.pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                for conn in proc.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        found.setdefault(name, set()).add(f"{conn.laddr.ip}:{conn.laddr.port}")
    return found


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    require(shutil.which("redis-server") is not None, "redis-server is not installed (run `make test`)")
    for name in BINDING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_stack_without_keys_serves_only_this_machine(clean_env: None, tmp_path: Path) -> None:
    outside = outside_address()
    flower_port = stack.free_port()
    with stack.local_stack(workers=0, flower_port=flower_port, log_dir=tmp_path) as (running, url):
        api_port = int(running.env["SANDBOX_PORT"])
        # It runs, for this machine: the API and Flower answer on loopback.
        assert requests.get(f"{url}/health", timeout=10).status_code in (200, 503)
        assert requests.get(f"http://127.0.0.1:{flower_port}/healthcheck", timeout=10).status_code == 200
        sockets = listening(running.procs)
        assert {"api", "flower", "redis"} <= set(sockets), sockets
        for name, addresses in sockets.items():
            assert all(ipaddress.ip_address(a.rsplit(":", 1)[0]).is_loopback for a in addresses), (name, addresses)
        assert f"127.0.0.1:{api_port}" in sockets["api"] and f"127.0.0.1:{flower_port}" in sockets["flower"]
        # And nobody else: the machine's other address reaches neither.
        assert not connects(outside, api_port), f"the open API answers on {outside}"
        assert not connects(outside, flower_port), f"Flower answers on {outside}"


def test_with_keys_and_credentials_both_may_listen_on_every_interface(clean_env: None, tmp_path: Path) -> None:
    """The control for the test above: the outside address does reach a stack that is told to listen there."""
    outside = outside_address()
    flower_port = stack.free_port()
    key = secrets.token_hex(16)
    password = secrets.token_hex(12)
    with stack.local_stack(workers=0, flower_port=flower_port, log_dir=tmp_path, SANDBOX_HOST="0.0.0.0",
                           PENNY_API_KEYS=f"{key}:acme", FLOWER_HOST="0.0.0.0",
                           FLOWER_BASIC_AUTH=f"admin:{password}") as (running, _url):
        api = f"http://{outside}:{running.env['SANDBOX_PORT']}"
        assert requests.post(f"{api}/api/v1/validate", json={"code": "1"}, timeout=10).status_code == 401
        flower = f"http://{outside}:{flower_port}"
        assert requests.get(f"{flower}/api/workers", timeout=10).status_code == 401
        assert requests.get(f"{flower}/api/workers", auth=("admin", password), timeout=10).status_code == 200


def test_an_open_api_on_every_interface_refuses_to_start(clean_env: None, tmp_path: Path) -> None:
    running = stack.Stack({**os.environ, "PYTHONUNBUFFERED": "1"}, tmp_path)
    try:
        redis_url = running.start_redis(stack.free_port())
        api_port = stack.free_port()
        with pytest.raises(RuntimeError, match="exited with code 1"):
            running.start_api(REDIS_URL=redis_url, SANDBOX_PORT=str(api_port), SANDBOX_HOST="0.0.0.0")
        log = (tmp_path / "api.log").read_text()
        assert "SANDBOX_HOST=0.0.0.0" in log and "PENNY_API_KEYS" in log and "PENNY_ALLOW_OPEN=true" in log
        assert not connects("127.0.0.1", api_port) and not connects(outside_address(), api_port)
    finally:
        running.close()


# Flower as docker-compose and Kubernetes run it.

def _compose_flower() -> tuple[list[str], dict[str, Any]]:
    service = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["flower"]
    return list(service["command"]), dict(service.get("environment") or {})


def _k8s_flower() -> tuple[list[str], dict[str, Any]]:
    docs = yaml.safe_load_all((REPO / "deploy" / "k8s" / "flower.yaml").read_text())
    container = next(d for d in docs if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return list(container["command"]), {env["name"]: env.get("valueFrom", env.get("value"))
                                        for env in container.get("env", [])}


def local_command(command: list[str], *, redis_url: str, port: int) -> list[str]:
    """The shipped command line with this machine's celery, the test Redis, a free port and loopback: every
    other argument as shipped."""
    assert command[0] == "celery", command
    argv = [str(Path(sys.executable).with_name("celery"))]
    for arg in command[1:]:
        if arg.startswith("--broker="):
            arg = f"--broker={redis_url}"
        elif arg.startswith("--port="):
            arg = f"--port={port}"
        elif arg.startswith("--address="):
            arg = "--address=127.0.0.1"
        argv.append(arg)
    assert f"--port={port}" in argv, f"the shipped command names no --port: {command}"
    if "--address=127.0.0.1" not in argv:
        argv.append("--address=127.0.0.1")
    return argv


@pytest.fixture(scope="module")
def test_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[stack.Stack, str]]:
    require(shutil.which("redis-server") is not None, "redis-server is not installed (run `make test`)")
    running = stack.Stack({**os.environ, "PYTHONUNBUFFERED": "1"}, tmp_path_factory.mktemp("flower-redis"))
    try:
        yield running, running.start_redis(stack.free_port())
    finally:
        running.close()


@pytest.mark.parametrize("shipped", [_compose_flower, _k8s_flower], ids=["compose", "k8s"])
def test_shipped_flower_needs_its_credentials(shipped: Any, test_redis: tuple[stack.Stack, str]) -> None:
    command, environment = shipped()
    source = environment.get("FLOWER_BASIC_AUTH")
    # The credentials come from a secret: compose's .env (required: compose stops without it), a k8s Secret.
    assert (isinstance(source, str) and source.startswith("${FLOWER_BASIC_AUTH:?")) or (
        isinstance(source, dict) and "secretKeyRef" in source and not source["secretKeyRef"].get("optional")), source
    assert "FLOWER_UNAUTHENTICATED_API" not in environment
    running, redis_url = test_redis
    port = stack.free_port()
    password = secrets.token_hex(12)
    env = {key: value for key, value in os.environ.items() if key not in BINDING_VARIABLES}
    env.update({"REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": f"admin:{password}"})  # what the secret provides
    flower = running._spawn("flower", local_command(command, redis_url=redis_url, port=port), env)
    try:
        base = f"http://127.0.0.1:{port}"
        stack.wait_until(lambda: stack.http_ok(f"{base}/healthcheck"), 60, "flower", flower)
        # Without credentials, or with wrong ones: nothing, neither the dashboard nor the API that controls workers.
        for path in ("/", "/workers", "/api/workers", "/api/tasks"):
            assert requests.get(f"{base}{path}", timeout=10).status_code == 401, path
            assert requests.get(f"{base}{path}", auth=("admin", "wrong"), timeout=10).status_code == 401, path
        shutdown = requests.post(f"{base}/api/worker/shutdown/penny@nowhere", timeout=10)
        assert shutdown.status_code == 401
        assert requests.get(f"{base}/healthcheck", timeout=10).status_code == 200  # the probes need no login
        with_credentials = requests.get(f"{base}/api/workers", auth=("admin", password), timeout=10)
        assert with_credentials.status_code == 200 and isinstance(with_credentials.json(), dict)
        assert requests.get(f"{base}/", auth=("admin", password), timeout=10).status_code == 200
        # Bound where the command says (here loopback): the shipped args keep working when the address changes.
        assert not connects(outside_address(), port)
    finally:
        running.stop(flower)
        running.procs.remove(("flower", flower))
