"""Concurrency and worker failure."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
import requests

from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]


def test_twenty_concurrent_jobs_each_get_their_own_output(cluster: Cluster) -> None:
    def run(index: int) -> dict:
        code = f"import time\nvalue = {index}\nprint('job', value)\ntime.sleep(0.2)\nvalue * 2"
        return cluster.execute(code)

    with ThreadPoolExecutor(max_workers=20) as executor:
        results = list(executor.map(run, range(20)))
    for index, result in enumerate(results):
        assert result["status"] == "success", result["error"]
        assert result["stdout"] == f"job {index}\n"
        assert result["result"]["repr"] == str(index * 2)
    assert len({result["jobId"] for result in results}) == 20


def test_a_worker_killed_mid_job_ends_the_job_worker_lost(own_cluster: Cluster) -> None:
    job_id = own_cluster.submit("import time\nprint('working', flush=True)\ntime.sleep(60)")
    for event in own_cluster.events(job_id):
        if event["event"] == "stdout":
            break
    worker = next(proc for name, proc in own_cluster.stack.procs if name.startswith("worker-"))
    own_cluster.stack.stop(worker, sig=signal.SIGKILL)
    killed_at = time.monotonic()
    while own_cluster.job(job_id)["status"] == "running":
        assert time.monotonic() - killed_at < 10, "the job stayed running after its worker died"
        time.sleep(0.2)
    view = own_cluster.job(job_id)
    assert view["status"] == "worker_lost" and view["result"]["status"] == "worker_lost"
    events = list(own_cluster.events(job_id))
    assert events[-1]["event"] == "result" and events[-1]["data"]["status"] == "worker_lost"
    # The orphaned sandboxes exit by themselves (their stdin closed with the worker's connection).
    client = docker.from_env()
    label = f"penny.worker={own_cluster.worker_prefix}"
    while client.containers.list(all=True, sparse=True, filters={"label": label}):
        assert time.monotonic() - killed_at < 20, "orphaned sandbox containers were left running"
        time.sleep(0.2)
    # With no worker left, new work is refused clearly instead of queued forever.
    response = requests.post(f"{own_cluster.url}/api/v1/execute", json={"code": "1"}, timeout=30)
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
