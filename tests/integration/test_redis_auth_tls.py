"""Redis with a password and TLS: Debian's redis-server with requirepass, a TLS-only port and client
certificates (a throwaway CA made here with openssl), and a whole stack through it: execute, a session, SSE,
the audit archiver and Flower's worker list. A wrong password stops start-up with a message that names
REDIS_URL and never shows the password; so do the API and the worker started on their own.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import stack
import yaml

from core.errors import ConfigError
from core.redis_client import RedisEndpoint
from tests.conftest import require
from tests.integration.conftest import Cluster, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
PASSWORD = f"pw-{secrets.token_hex(16)}"
LIGHT = {"POOL_SIZE": "1", "SESSION_POOL_SIZE": "1", "PRELOAD_MODULES": "json", "API_WORKERS": "1"}



def assert_execute_and_a_session_work(cluster: Cluster) -> None:
    """A stateless execute, then a session that keeps a variable and is deleted."""
    assert cluster.execute("print(6 * 7)")["stdout"] == "42\n"
    created = requests.post(f"{cluster.url}/api/v1/sessions", json={}, timeout=60)
    assert created.status_code == 201, created.text
    session_id = created.json()["sessionId"]
    cluster.execute("x = 41", sessionId=session_id)
    assert cluster.execute("print(x + 1)", sessionId=session_id)["stdout"] == "42\n"
    assert requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=60).status_code in (200, 204)

def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(directory: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "1", "-subj", f"/CN=PENNY test {name}",
             cwd=directory)


def _sign(directory: Path, name: str, subject: str, extensions: str) -> None:
    (directory / f"{name}.ext").write_text(extensions + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=directory)


@dataclass(frozen=True)
class SecureRedis:
    """A redis-server that speaks only TLS, wants client certificates and a password."""

    port: int
    tls: Path  # ca.crt, server.*, client.*, other-ca.crt

    def url(self, password: str = PASSWORD) -> str:
        return f"rediss://:{password}@127.0.0.1:{self.port}/0"

    def settings(self) -> dict[str, str]:
        return {"REDIS_TLS_CA_FILE": str(self.tls / "ca.crt"), "REDIS_TLS_CERT_FILE": str(self.tls / "client.crt"),
                "REDIS_TLS_KEY_FILE": str(self.tls / "client.key")}

    def endpoint(self, password: str = PASSWORD, **files: str) -> RedisEndpoint:
        return RedisEndpoint(self.url(password), ca_file=files.get("ca_file", str(self.tls / "ca.crt")),
                             cert_file=str(self.tls / "client.crt"), key_file=str(self.tls / "client.key"))


@pytest.fixture(scope="module")
def secure_redis(services_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureRedis]:
    require(shutil.which("openssl") is not None, "openssl is not installed")
    tls = tmp_path_factory.mktemp("redis-tls")
    _make_ca(tls, "ca")
    _make_ca(tls, "other-ca")
    _sign(tls, "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    _sign(tls, "client", "/CN=penny", "extendedKeyUsage=clientAuth")
    running = stack.Stack({**os.environ}, tls)
    port = stack.free_port()
    proc = running._spawn("redis", [
        "redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--dir", str(tls), "--tls-cert-file", str(tls / "server.crt"), "--tls-key-file", str(tls / "server.key"),
        "--tls-ca-cert-file", str(tls / "ca.crt"), "--tls-auth-clients", "yes", "--requirepass", PASSWORD,
    ], running.env)
    secure = SecureRedis(port, tls)
    try:
        try:
            stack.wait_until(lambda: secure.endpoint().verify(timeout_s=1), 20, "redis with TLS", proc)
        except RuntimeError:  # it exited: say why (a redis-server built without TLS names TLS in its log)
            pytest.fail(f"redis-server with TLS did not start: {(tls / 'redis.log').read_text()[-500:]}")
        yield secure
    finally:
        running.close()


def test_the_redis_refuses_clients_without_the_password_or_a_trusted_certificate(secure_redis: SecureRedis) -> None:
    with pytest.raises(ConfigError, match="Redis refused the login") as raised:
        secure_redis.endpoint(password="wrong-password").verify()
    assert "rediss://:***@127.0.0.1" in str(raised.value) and "wrong-password" not in str(raised.value)
    with pytest.raises(ConfigError, match="the TLS handshake failed"):  # a server certificate no CA of ours signed
        secure_redis.endpoint(ca_file=str(secure_redis.tls / "other-ca.crt")).verify()
    with pytest.raises(redis.ConnectionError):  # no client certificate: tls-auth-clients refuses the connection
        RedisEndpoint(secure_redis.url(), ca_file=str(secure_redis.tls / "ca.crt")).client(
            socket_connect_timeout=2, socket_timeout=2).ping()
    with pytest.raises(redis.ConnectionError):  # plain TCP to the TLS port
        redis.Redis(port=secure_redis.port, password=PASSWORD, socket_connect_timeout=2, socket_timeout=2).ping()


def _flower_workers(flower: str, worker: str) -> dict[str, Any]:
    """Flower's worker list once it has `worker` (Flower asks the workers over the broker)."""
    deadline = time.monotonic() + 45
    while True:
        response = requests.get(f"{flower}/api/workers", params={"refresh": "1"}, timeout=30)
        assert response.status_code == 200, response.text
        workers = response.json()
        if worker in workers or time.monotonic() > deadline:
            return dict(workers)
        time.sleep(0.5)


def test_a_stack_runs_through_redis_with_a_password_and_tls(secure_redis: SecureRedis, log_root: Path) -> None:
    flower_port = stack.free_port()
    with running_cluster("tls", log_root, audited=True, redis_url=secure_redis.url(), flower_port=flower_port,
                         **{**LIGHT, **secure_redis.settings()}) as cluster:
        # It used the Redis it was given (it starts its own only for a plain redis:// URL that does not answer).
        assert cluster.stack.env["REDIS_URL"] == secure_redis.url()
        assert not any(name == "redis" for name, _ in cluster.stack.procs)

        assert_execute_and_a_session_work(cluster)

        job_id = cluster.submit("print('streamed')")
        events = list(cluster.events(job_id))
        assert [e["data"]["text"] for e in events if e["event"] == "stdout"] == ["streamed\n"]
        assert events[-1]["event"] == "result" and events[-1]["data"]["status"] == "success"

        # The audit archiver (in the API process) copies the stream to its file through the same Redis.
        audit_file = Path(cluster.stack.env["AUDIT_LOG_PATH"])
        deadline = time.monotonic() + 30
        while not (audit_file.exists() and job_id in audit_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job_id in audit_file.read_text()

        # Flower reaches the workers over the broker with the same credentials and certificates.
        worker = f"penny@{cluster.worker_prefix}"
        workers = _flower_workers(f"http://127.0.0.1:{flower_port}", worker)
        assert worker in workers, sorted(workers)
        assert workers[worker].get("stats"), workers[worker]

        # The password is on no command line (`ps` shows those to every user) and in no log.
        for name, proc in cluster.stack.procs:
            assert PASSWORD not in " ".join(map(str, proc.args)), name
        for log in cluster.stack.log_dir.glob("*.log"):
            assert PASSWORD not in log.read_text(errors="replace"), log.name


def test_a_stack_with_a_wrong_password_stops_at_start_up(secure_redis: SecureRedis, tmp_path: Path) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised, stack.local_stack(
            workers=1, redis_url=secure_redis.url(wrong), log_dir=tmp_path, **{**LIGHT, **secure_redis.settings()}):
        pytest.fail("the stack started with a wrong Redis password")
    message = str(raised.value)
    assert message.startswith(f"REDIS_URL rediss://:***@127.0.0.1:{secure_redis.port}/0: Redis refused the login")
    assert wrong not in message and "check the user and password in REDIS_URL" in message
    assert time.monotonic() - started < 15
    assert not list(tmp_path.glob("*.log"))  # nothing was started


@pytest.mark.parametrize("module, program", [("api.serve", "penny-api"), ("workers.serve", "penny-worker")])
def test_the_api_and_a_worker_refuse_a_wrong_password_with_a_clear_message(
        secure_redis: SecureRedis, module: str, program: str) -> None:
    wrong = f"wrong-{secrets.token_hex(8)}"
    env = {**os.environ, **LIGHT, **secure_redis.settings(), "REDIS_URL": secure_redis.url(wrong),
           "SANDBOX_PORT": str(stack.free_port()), "WORKER_NAME": "wrong-password", "SANDBOX_HOST": "127.0.0.1"}
    done = subprocess.run([sys.executable, "-m", module], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"{program}: REDIS_URL rediss://:***@127.0.0.1:{secure_redis.port}/0: Redis refused the login" \
        in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and wrong not in done.stderr + done.stdout


# Redis as docker-compose and Kubernetes run it: the password from the secret, on no command line.

def _compose_redis() -> tuple[str, dict[str, Any]]:
    service = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["redis"]
    return service["command"][-1].replace("$$", "$"), dict(service["environment"])


def _k8s_redis() -> tuple[str, dict[str, Any]]:
    docs = yaml.safe_load_all((REPO / "deploy" / "k8s" / "redis.yaml").read_text())
    container = next(d for d in docs if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container["args"][-1], {env["name"]: env.get("valueFrom", env.get("value")) for env in container["env"]}


@pytest.mark.parametrize("shipped", [_compose_redis, _k8s_redis], ids=["compose", "k8s"])
def test_shipped_redis_requires_the_password_from_the_secret(shipped: Any, services_ready: None,
                                                             tmp_path: Path) -> None:
    script, environment = shipped()
    source = environment["REDIS_PASSWORD"]
    assert (isinstance(source, str) and source.startswith("${REDIS_PASSWORD:?")) or (
        isinstance(source, dict) and not source["secretKeyRef"].get("optional")), source
    assert "docker-entrypoint.sh redis-server -" in script  # the image's entrypoint drops root
    port = stack.free_port()
    local = script.replace("docker-entrypoint.sh ", "").replace(
        "redis-server -", f"redis-server - --port {port} --bind 127.0.0.1 --dir {tmp_path} --save ''")
    running = stack.Stack({**os.environ, "REDIS_PASSWORD": PASSWORD}, tmp_path)
    try:
        proc = running._spawn("redis", ["sh", "-c", local], running.env)
        endpoint = RedisEndpoint(f"redis://:{PASSWORD}@127.0.0.1:{port}/0")
        stack.wait_until(lambda: endpoint.verify(timeout_s=1), 20, "shipped redis", proc)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, socket_connect_timeout=2).ping()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        assert PASSWORD not in cmdline
    finally:
        running.close()


# The least-privilege ACL users of deploy/redis/users.acl, each process with its own.

def test_acl_users_run_a_stack_and_are_refused_everything_else(services_ready: None, tmp_path: Path) -> None:
    passwords = {user: secrets.token_hex(16) for user in ("admin", "api", "worker", "flower")}
    acl = (REPO / "deploy" / "redis" / "users.acl").read_text()
    for user, password in passwords.items():
        acl = acl.replace(f"#{user.upper()}_PASSWORD_SHA256", "#" + hashlib.sha256(password.encode()).hexdigest())
    assert "_PASSWORD_SHA256" not in acl
    (tmp_path / "users.acl").write_text(acl)
    port = stack.free_port()

    def url(user: str) -> str:
        return f"redis://{user}:{passwords[user]}@127.0.0.1:{port}/0"

    prefix = f"acl-{uuid.uuid4().hex[:8]}"
    running = stack.Stack({**os.environ, "PYTHONUNBUFFERED": "1", **LIGHT, "REDIS_URL": url("admin"),
                           "AUDIT_LOG_PATH": str(tmp_path / "audit.jsonl"), "SANDBOX_PORT": str(stack.free_port())},
                          tmp_path)
    try:
        proc = running._spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--dir", str(tmp_path), "--aclfile", str(tmp_path / "users.acl")], running.env)
        stack.wait_until(lambda: RedisEndpoint(url("admin")).verify(timeout_s=1), 20, "redis with ACL", proc)
        admin = running.redis_client()
        with pytest.raises(redis.AuthenticationError):  # the default user is off
            redis.Redis(port=port, socket_connect_timeout=2).ping()

        running.start_worker(prefix, REDIS_URL=url("worker"))
        running.start_api(REDIS_URL=url("api"))
        flower_port = stack.free_port()
        running.env["REDIS_URL"] = url("flower")  # Flower reads REDIS_URL from the stack's environment
        running.start_flower(flower_port)
        running.env["REDIS_URL"] = url("admin")
        cluster = Cluster(running, f"http://127.0.0.1:{running.env['SANDBOX_PORT']}", prefix)

        assert_execute_and_a_session_work(cluster)
        job_id = cluster.submit("import time\nprint('started', flush=True)\ntime.sleep(60)")
        for event in cluster.events(job_id):
            if event["event"] == "stdout":
                break
        assert requests.delete(f"{cluster.url}/api/v1/jobs/{job_id}", timeout=30).status_code == 202
        assert list(cluster.events(job_id))[-1]["data"]["status"] == "cancelled"  # the cancel channel works
        worker = f"penny@{prefix}"
        assert worker in _flower_workers(f"http://127.0.0.1:{flower_port}", worker)
        audit_file = tmp_path / "audit.jsonl"
        deadline = time.monotonic() + 30
        while not (audit_file.exists() and job_id in audit_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job_id in audit_file.read_text()

        # Nothing the stack did was denied ...
        denied = admin.acl_log()
        assert not denied, [(e.get("username"), e.get("reason"), e.get("object")) for e in denied]
        # ... and each user is refused what it does not need.
        api = RedisEndpoint(url("api")).client()
        flower = RedisEndpoint(url("flower")).client()
        worker_client = RedisEndpoint(url("worker")).client()
        refused = [
            lambda: api.config_get("*"), lambda: api.flushall(), lambda: api.keys("*"), lambda: api.get("other"),
            lambda: api.acl_list(), lambda: worker_client.flushdb(), lambda: worker_client.shutdown(),
            lambda: worker_client.get("other"), lambda: flower.hgetall(f"penny:job:{job_id}"),
            lambda: flower.xrange("penny:audit"), lambda: flower.publish("penny:cancel", job_id),
            lambda: flower.llen("penny"),
        ]
        for attempt in refused:
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
        assert admin.hget(f"penny:job:{job_id}", "status") == b"cancelled"
    finally:
        running.close()
