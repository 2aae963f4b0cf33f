"""The real thing: Redis, a Celery worker process with its warm pool of Docker sandboxes, the API over HTTP."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import stack

from core import keys
from core.isolation import DOCKER_RUNTIME, Tier
from core.jobs import JobStore
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
IMAGE = "penny-sandbox:latest"
# A secret only the service's own processes hold (their environment): no sandbox may ever see it.
CANARY = f"canary-{uuid.uuid4().hex}"
TEST_SETTINGS = {
    "PENNY_TEST_CANARY": CANARY,
    "POOL_SIZE": "4",
    "MAX_EXECUTION_TIME": "20000",
    "OUTPUT_LIMIT_BYTES": str(1024 * 1024),
    "HEARTBEAT_TTL_SECONDS": "3",
    "JOB_RETENTION_SECONDS": "600",
}
# What a tier's stacks change: none so far.
TIER_SETTINGS: dict[Tier, dict[str, str]] = {Tier.RUNC: {}, Tier.GVISOR: {}}


@dataclass
class Cluster:
    """A running stack and helpers to talk to it over HTTP."""

    stack: stack.Stack
    url: str
    worker_prefix: str

    def execute(self, code: str, **body: Any) -> dict[str, Any]:
        response = requests.post(f"{self.url}/api/v1/execute", json={"code": code, **body}, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()

    def submit(self, code: str, **body: Any) -> str:
        response = requests.post(f"{self.url}/api/v1/jobs", json={"code": code, **body}, timeout=30)
        assert response.status_code == 202, response.text
        return str(response.json()["jobId"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/v1/jobs/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def events(self, job_id: str, *, last_event_id: str | None = None) -> Iterator[dict[str, Any]]:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        with requests.get(f"{self.url}/api/v1/jobs/{job_id}/events", headers=headers, stream=True,
                          timeout=120) as response:
            assert response.status_code == 200, response.text
            yield from parse_sse(response)


def parse_sse(response: requests.Response) -> Iterator[dict[str, Any]]:
    """SSE events of a streaming response as {id, event, data}, as they arrive."""
    fields: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "event" in fields:
                yield {"id": fields["id"], "event": fields["event"], "data": json.loads(fields["data"])}
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def docker_ready() -> bool:
    """A Docker engine answers and has the sandbox image."""
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        client.images.get(IMAGE)
        return True
    except Exception:
        return False


def _remove_test_containers(prefix: str) -> None:
    client = docker.from_env(timeout=30)
    # Sparse: no inspect per container, so one that goes away meanwhile (auto_remove) breaks nothing.
    for container in client.containers.list(all=True, sparse=True, filters={"label": "penny.sandbox=1"}):
        if (container.attrs.get("Labels") or {}).get("penny.worker", "").startswith(prefix):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.fixture(scope="session")
def services_ready() -> None:
    require(shutil.which("redis-server") is not None, "redis-server is not installed (run `make test`)")
    require(docker_ready(), f"no Docker engine or no {IMAGE} image (run `make test`)")


def runtime_findings(result: dict[str, Any]) -> list[str]:
    """The targets of the runtime's findings (the kernel's seccomp filter reports the system call)."""
    return [finding["target"] for finding in result["findings"] if finding.get("source") == "runtime"]


def assert_syscall_reported(result: dict[str, Any], syscall: str, tier: Tier) -> None:
    """A `report` rule of the kernel's seccomp filter caught `syscall`: under runc the job is a
    policy_violation naming it. gVisor has no seccomp user notification: the same call is refused with the
    same EPERM (the caller's assertions check that), but nothing is recorded (README, "Running under gVisor")."""
    if tier is Tier.GVISOR:
        assert result["status"] != "policy_violation" and runtime_findings(result) == [], result
    else:
        assert result["status"] == "policy_violation" and syscall in runtime_findings(result), result


def docker_runtimes() -> set[str]:
    """The runtimes the local Docker engine has (daemon.json's and its own)."""
    try:
        return set(docker.from_env(timeout=10).info().get("Runtimes") or {})
    except Exception:
        return set()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that runs on a stack gets the `tier` its stack runs sandboxes on: each of --tiers for a test
    marked `tiers` (the correctness, limits and attack suites), runc for the others. One stack per tier serves
    the whole session (pytest groups the tests by tier)."""
    if "tier" not in metafunc.fixturenames:
        return
    wanted = [Tier(name) for name in metafunc.config.getoption("--tiers").split(",") if name]
    tiers = wanted if metafunc.definition.get_closest_marker("tiers") else [Tier.RUNC]
    not_on_gvisor = metafunc.definition.get_closest_marker("not_on_gvisor")
    params = [pytest.param(tier, id=tier.value, marks=[pytest.mark.xfail(
        strict=True, reason=f"gVisor: {not_on_gvisor.kwargs['reason']}")] if not_on_gvisor and tier is Tier.GVISOR
        else []) for tier in tiers]
    metafunc.parametrize("tier", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def tier(request: pytest.FixtureRequest, services_ready: None) -> Tier:
    """The isolation tier of this test's stacks (SANDBOX_RUNTIME); a missing runtime fails under CI=true."""
    chosen = Tier(getattr(request, "param", Tier.RUNC))
    runtime = DOCKER_RUNTIME[chosen]
    require(runtime in docker_runtimes(), f"Docker has no {runtime} runtime (run `make test`, or "
                                          "deploy/scripts/ensure_gvisor.sh)")
    return chosen


@pytest.fixture(scope="session")
def log_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack-logs")


@contextlib.contextmanager
def running_cluster(name: str, log_root: Path, *, workers: int = 1, audited: bool = False,
                    tier: Tier = Tier.RUNC, **settings: str) -> Iterator[Cluster]:
    """A stack of its own (Redis, the API, `workers` worker hosts) with TEST_SETTINGS and `settings`, whose
    sandboxes run on tier's runtime; its sandboxes are removed afterwards. audited: check at the end that every
    job it ran has its audit record."""
    prefix = f"{name}-{tier.value}-{uuid.uuid4().hex[:8]}"
    tier_settings = {"SANDBOX_RUNTIME": DOCKER_RUNTIME[tier], **TIER_SETTINGS[tier]}
    try:
        with stack.local_stack(workers=workers, worker_prefix=prefix, log_dir=log_root / prefix,
                               **{**TEST_SETTINGS, **tier_settings, **settings}) as (running, url):
            cluster = Cluster(running, url, prefix)
            yield cluster
            assert_every_job_ended(cluster)
            if audited:
                assert_every_job_is_audited(cluster)
    finally:
        _remove_test_containers(prefix)


@pytest.fixture(scope="session")
def cluster(tier: Tier, log_root: Path) -> Iterator[Cluster]:
    with running_cluster("test", log_root, audited=True, tier=tier) as running:
        yield running


def assert_every_job_ended(cluster: Cluster, *, timeout_s: float = 60.0) -> None:
    """No job of this cluster stays queued or running: each one still in flight ends within timeout_s
    (a job's own timeout is at most MAX_EXECUTION_TIME, 20 s here; the service ends stuck ones)."""
    client = cluster.stack.redis_client()  # REDIS_URL with its credentials and TLS
    store = JobStore(client, retention_s=600)
    stored = {key.decode().split(":")[2] for key in client.scan_iter("penny:job:*") if not key.endswith(b":events")}
    deadline = time.monotonic() + timeout_s

    def ends(job_id: str) -> bool:
        # Waits in slices shorter than the client's 5 s socket timeout (a longer block would time the read out).
        while store.await_final(job_id, min(2000, max(0, int((deadline - time.monotonic()) * 1000)))) is None:
            if client.hget(keys.job_key(job_id), "status") is None:
                return True  # expired
            if time.monotonic() >= deadline:
                return False
        return True

    left = [job_id for job_id in sorted(stored) if not ends(job_id)]
    assert not left, f"{len(left)} jobs never ended: {left[:10]}"


def assert_every_job_is_audited(cluster: Cluster, headers: dict[str, str] | None = None) -> set[str]:
    """Every job this cluster's Redis still holds has its audit record (open or final): run at the end of a
    session, this covers every execution of the test run on that cluster. Returns those job ids."""
    client = cluster.stack.redis_client()  # REDIS_URL with its credentials and TLS
    stored = {key.decode().split(":")[2] for key in client.scan_iter("penny:job:*") if not key.endswith(b":events")}
    audited: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{cluster.url}/api/v1/audit", params=params, headers=headers or {}, timeout=60).json()
        audited |= {record["jobId"] for record in page["records"]}
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert stored <= audited, f"{len(stored - audited)} of {len(stored)} jobs have no audit record"
    return stored


def _open_policy_dir(root: Path) -> Path:
    """The default policies without the runtime's second layer: no blocked import, builtin or path."""
    target = root / "open-policies"
    shutil.copytree(REPO / "policies", target)
    imports = json.loads((target / "imports.json").read_text())
    imports["blocked"] = []
    imports["restricted"]["builtins"]["blocked"] = []
    (target / "imports.json").write_text(json.dumps(imports))
    filesystem = json.loads((target / "filesystem.json").read_text())
    filesystem["blockedPaths"] = []
    (target / "filesystem.json").write_text(json.dumps(filesystem))
    return target


@pytest.fixture(scope="session")
def open_cluster(tier: Tier, log_root: Path) -> Iterator[Cluster]:
    """A stack whose sandboxes run user code with the import and filesystem policies switched off.

    The container is the security boundary: the attacks against it run here, with `import os`, `socket`
    and `ctypes` allowed, so they prove the container and not the policy layer in front of it.
    """
    with running_cluster("open", log_root, audited=True, tier=tier,
                         POLICY_DIR=str(_open_policy_dir(log_root / tier.value))) as running:
        yield running


@pytest.fixture
def own_cluster(tier: Tier, log_root: Path) -> Iterator[Cluster]:
    """A separate small stack (own Redis, API, one worker) for tests that break their worker."""
    with running_cluster("own", log_root, tier=tier, POOL_SIZE="1", PRELOAD_MODULES="json") as running:
        yield running
