"""Isolation tiers on a real stack: one tenant on gVisor (runsc), another on runc, side by side.

Tenant beta is TENANT_ISOLATION's gVisor tenant, acme takes SANDBOX_RUNTIME's default (runc). Each tier's pools
are one sandbox here (a gVisor sandbox is slow to start and to fork). The kernel a job sees tells the tiers
apart: under runc it is the host's (the same release as this process's), under gVisor it is gVisor's Sentry,
which reports its own fixed release (4.4.0) and version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from tests.conftest import require
from tests.integration.conftest import (
    REPO,
    Cluster,
    _open_policy_dir,
    assert_every_job_is_audited,
    docker_runtimes,
    running_cluster,
)

pytestmark = [pytest.mark.redis, pytest.mark.docker]

KEY_A, KEY_B, ADMIN = (uuid.uuid4().hex for _ in range(3))
HOST_RELEASE = os.uname().release
GVISOR_RELEASE = "4.4.0"  # what gVisor's Sentry reports as its Linux release (its syscall ABI level)
# The kernel the code runs on, as Python sees it and as /proc says (user code may read it under the open policy).
PROBE = "import platform\nprint(platform.release())\nprint(open('/proc/version').read().strip())"


class Client:
    """HTTP calls made with one API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", headers=self.headers, timeout=180, **kwargs)

    def execute(self, code: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/api/v1/execute", json={"code": code, **body})
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def tiers_cluster(services_ready: None, log_root: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if "gvisor" not in request.config.getoption("--tiers").split(","):
        pytest.skip("--tiers leaves gvisor out")
    require("runsc" in docker_runtimes(), "Docker has no runsc runtime (run `make gvisor`)")
    with running_cluster("tiers", log_root, POOL_SIZE="1", SESSION_POOL_SIZE="1", GVISOR_POOL_SIZE="1",
                         GVISOR_SESSION_POOL_SIZE="1", PENNY_API_KEYS=f"{KEY_A}:acme,{KEY_B}:beta",
                         PENNY_ADMIN_KEYS=ADMIN, TENANT_ISOLATION="beta:gvisor",
                         POLICY_DIR=str(_open_policy_dir(log_root / "tiers"))) as running:
        yield running
        assert_every_job_is_audited(running, headers={"Authorization": f"Bearer {ADMIN}"})


def kernel_of(result: dict[str, Any]) -> tuple[str, str]:
    """(release, /proc/version) printed by PROBE."""
    assert result["status"] == "success", (result["error"], result["stderr"][-2000:], result["notes"])
    release, proc_version = result["stdout"].splitlines()[:2]
    return release, proc_version


def assert_runs_on_gvisor(result: dict[str, Any]) -> None:
    release, proc_version = kernel_of(result)
    assert result["isolation"] == "gvisor"
    assert release == GVISOR_RELEASE != HOST_RELEASE and HOST_RELEASE not in proc_version


def assert_runs_on_runc(result: dict[str, Any]) -> None:
    release, proc_version = kernel_of(result)
    assert result["isolation"] == "runc"
    assert release == HOST_RELEASE and HOST_RELEASE in proc_version


def assert_containers_use_their_tiers_runtime(cluster: Cluster) -> set[str]:
    """Every sandbox of the cluster was created with its tier label's Docker runtime; the tiers seen."""
    client = docker.from_env(timeout=30)
    tiers = set()
    for container in client.containers.list(filters={"label": "penny.sandbox=1"}):
        labels = container.labels
        if not labels.get("penny.worker", "").startswith(cluster.worker_prefix):
            continue
        runtime = container.attrs["HostConfig"]["Runtime"]
        assert runtime == {"runc": "runc", "gvisor": "runsc"}[labels["penny.tier"]], (container.name, labels)
        tiers.add(labels["penny.tier"])
    return tiers


def test_a_gvisor_tenants_job_runs_on_gvisors_kernel_and_a_runc_tenants_on_the_hosts(
        tiers_cluster: Cluster) -> None:
    acme, beta = Client(tiers_cluster.url, KEY_A), Client(tiers_cluster.url, KEY_B)
    on_gvisor = beta.execute(PROBE)
    assert_runs_on_gvisor(on_gvisor)
    on_runc = acme.execute(PROBE)
    assert_runs_on_runc(on_runc)
    assert beta.call("GET", f"/api/v1/jobs/{on_gvisor['jobId']}").json()["isolation"] == "gvisor"
    assert acme.call("GET", f"/api/v1/jobs/{on_runc['jobId']}").json()["isolation"] == "runc"
    # Nothing a client sends chooses the tier: a body naming one is refused, and beta stays on gVisor.
    refused = beta.call("POST", "/api/v1/execute", json={"code": PROBE, "isolation": "runc"})
    assert refused.status_code == 400, refused.text
    assert_runs_on_gvisor(beta.execute(PROBE))
    assert assert_containers_use_their_tiers_runtime(tiers_cluster) == {"runc", "gvisor"}
    worker = requests.get(f"{tiers_cluster.url}/health", timeout=30).json()["workers"][0]
    assert set(worker["tiers"]) == {"runc", "gvisor"}
    for figures in worker["tiers"].values():  # one warm sandbox per tier here (POOL_SIZE, GVISOR_POOL_SIZE)
        assert figures["pool"]["size"] == 1 and figures["sessionPool"]["size"] >= 1
    assert worker["pool"]["size"] == 2  # every tier's together


def test_a_gvisor_tenants_session_lives_on_gvisor_and_a_runc_tenants_on_runc(tiers_cluster: Cluster) -> None:
    for client, tier, check in ((Client(tiers_cluster.url, KEY_B), "gvisor", assert_runs_on_gvisor),
                                (Client(tiers_cluster.url, KEY_A), "runc", assert_runs_on_runc)):
        created = client.call("POST", "/api/v1/sessions", json={"variables": {"n": 41}})
        assert created.status_code == 201, created.text
        session_id = created.json()["sessionId"]
        try:
            assert created.json()["isolation"] == tier
            assert client.call("GET", f"/api/v1/sessions/{session_id}").json()["isolation"] == tier
            check(client.execute(PROBE + "\nn += 1", sessionId=session_id))
            second = client.execute("n", sessionId=session_id)
            assert second["isolation"] == tier and second["result"]["repr"] == "42"
        finally:
            assert client.call("DELETE", f"/api/v1/sessions/{session_id}").status_code == 204


def test_the_audit_trail_says_which_tier_ran_each_job_and_session(tiers_cluster: Cluster) -> None:
    acme, beta = Client(tiers_cluster.url, KEY_A), Client(tiers_cluster.url, KEY_B)
    jobs = {beta.execute("1")["jobId"]: "gvisor", acme.execute("1")["jobId"]: "runc"}
    session_id = beta.call("POST", "/api/v1/sessions", json={}).json()["sessionId"]
    assert beta.call("DELETE", f"/api/v1/sessions/{session_id}").status_code == 204
    admin = Client(tiers_cluster.url, ADMIN)
    records = admin.call("GET", "/api/v1/audit", params={"limit": "1000"}).json()["records"]
    by_job = {r["jobId"]: r for r in records if r.get("jobId")}
    assert {job_id: by_job[job_id]["isolation"] for job_id in jobs} == jobs
    session_records = {r["kind"]: r for r in records if r.get("sessionId") == session_id}
    assert session_records["session_create"]["isolation"] == "gvisor"
    assert session_records["session_delete"]["isolation"] == "gvisor"
    tenants_tiers = {(r["tenant"], r["isolation"]) for r in records if r.get("kind") == "execution"}
    assert tenants_tiers <= {("beta", "gvisor"), ("acme", "runc")}  # nothing of either ran on the other's tier


class _DockerWithoutRunsc(BaseHTTPRequestHandler):
    """Answers as a Docker engine whose runtimes are runc alone."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith("/version"):
            body: dict[str, Any] = {"ApiVersion": "1.41", "Version": "20.10.0", "MinAPIVersion": "1.12"}
        elif self.path.endswith("/info"):
            body = {"Runtimes": {"runc": {"path": "runc"}}, "DefaultRuntime": "runc"}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


def test_a_worker_whose_docker_lacks_runsc_refuses_to_start_a_gvisor_tier_naming_it() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DockerWithoutRunsc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{server.server_address[1]}",
               "TENANT_ISOLATION": "beta:gvisor", "REDIS_URL": "redis://127.0.0.1:1/0", "WORKER_NAME": "no-runsc"}
        env.pop("DOCKER_TLS_VERIFY", None)
        done = subprocess.run([sys.executable, "-m", "workers.serve"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 1, done.stderr
    assert "penny-worker: the gvisor isolation tier needs Docker's runtime 'runsc'" in done.stderr
    assert "make gvisor" in done.stderr  # (a runc-only worker passes this check: tests/unit/test_isolation_tiers.py)
