"""Sessions across two worker hosts: spread, affinity, the per-host cap, host loss, idle expiry."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Cluster, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

SMALL_HOSTS = {"POOL_SIZE": "1", "SESSION_POOL_SIZE": "1", "MAX_SESSIONS_PER_HOST": "3",
               "PRELOAD_MODULES": "json"}


@pytest.fixture
def two_hosts(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    with running_cluster("two", log_root, workers=2, **SMALL_HOSTS) as running:
        yield running


def _create(cluster: Cluster) -> requests.Response:
    return requests.post(f"{cluster.url}/api/v1/sessions", json={}, timeout=60)


def test_sessions_spread_over_hosts_and_run_on_their_owner_until_the_cap(two_hosts: Cluster) -> None:
    created = [_create(two_hosts).json() for _ in range(6)]
    owners = {c["sessionId"]: c["worker"] for c in created}
    hosts = [f"{two_hosts.worker_prefix}-1", f"{two_hosts.worker_prefix}-2"]
    assert sorted(owners.values()) == sorted(hosts * 3)
    for session_id, owner in owners.items():
        for _ in range(2):
            result = two_hosts.execute("import os\nos.getpid()", sessionId=session_id)
            assert result["worker"] == owner
    refused = _create(two_hosts)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "overloaded"
    requests.delete(f"{two_hosts.url}/api/v1/sessions/{next(iter(owners))}", timeout=30)
    assert _create(two_hosts).status_code == 201  # a freed slot is usable again


def test_losing_a_host_loses_its_sessions_and_their_pending_jobs_quickly(two_hosts: Cluster) -> None:
    sessions = {c["worker"]: c["sessionId"] for c in (_create(two_hosts).json() for _ in range(2))}
    doomed_name, survivor_name = f"{two_hosts.worker_prefix}-1", f"{two_hosts.worker_prefix}-2"
    doomed_session, surviving_session = sessions[doomed_name], sessions[survivor_name]
    running = two_hosts.submit("import time\nprint('busy', flush=True)\ntime.sleep(60)", sessionId=doomed_session)
    for event in two_hosts.events(running):
        if event["event"] == "stdout":
            break
    pending = [two_hosts.submit("1", sessionId=doomed_session) for _ in range(2)]
    doomed = next(proc for name, proc in two_hosts.stack.procs if name == f"worker-{doomed_name}")
    two_hosts.stack.stop(doomed, sig=signal.SIGKILL)
    killed_at = time.monotonic()
    for job_id in [running, *pending]:
        while two_hosts.job(job_id)["status"] in ("queued", "running"):
            assert time.monotonic() - killed_at < 5.5, f"job {job_id} still waiting after its host died"
            time.sleep(0.1)
        assert two_hosts.job(job_id)["status"] == "worker_lost"
    view = requests.get(f"{two_hosts.url}/api/v1/sessions/{doomed_session}", timeout=30).json()
    assert view["status"] == "lost"
    assert two_hosts.execute("6 * 7", sessionId=surviving_session)["result"]["repr"] == "42"
    replacement = _create(two_hosts)
    assert replacement.status_code == 201 and replacement.json()["worker"] == survivor_name
    assert two_hosts.execute("print('stateless still works')")["status"] == "success"


@pytest.fixture
def short_idle(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    with running_cluster("idle", log_root, **SMALL_HOSTS, SESSION_IDLE_TIMEOUT="1500") as running:
        yield running


def test_an_idle_session_expires_and_its_container_goes(short_idle: Cluster) -> None:
    import docker

    session_id = _create(short_idle).json()["sessionId"]
    short_idle.execute("x = 1", sessionId=session_id)
    label = f"penny.worker={short_idle.worker_prefix}"
    started = time.monotonic()
    while requests.get(f"{short_idle.url}/api/v1/sessions/{session_id}", timeout=30).json()["status"] != "expired":
        assert time.monotonic() - started < 6, "the idle session never expired"
        time.sleep(0.2)
    response = requests.post(f"{short_idle.url}/api/v1/execute", json={"code": "x", "sessionId": session_id},
                             timeout=30)
    assert response.status_code == 409 and response.json()["error"]["details"]["status"] == "expired"
    containers = docker.from_env().containers.list(sparse=True, filters={"label": [label, "penny.mode=session"]})
    assert len(containers) == 1  # only the warm spare of the session pool is left
