"""Operations: health, metrics (API and worker exporters), resource monitoring, Flower, scaling, restarts."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import stack

from tests.integration.conftest import Cluster, parse_sse, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]


def test_health_reports_workers_pools_sessions_and_system(cluster: Cluster) -> None:
    response = requests.get(f"{cluster.url}/health", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] in ("healthy", "degraded") and body["uptime"] >= 0
    assert set(body["system"]) == {"memory", "cpu", "disk"} and 0 < body["system"]["memory"] < 100
    assert set(body["sessions"]) == {"active", "total"} and body["queue"]["depth"] >= 0
    worker = next(w for w in body["workers"] if w["name"].startswith(cluster.worker_prefix))
    assert worker["pool"]["size"] == 4 and worker["lastHeartbeat"] > 0


def test_metrics_cover_the_api_and_the_cluster(cluster: Cluster) -> None:
    cluster.execute("print(1)")
    text = requests.get(f"{cluster.url}/metrics", timeout=30).text
    assert 'penny_api_requests_total{endpoint="/api/v1/execute",method="POST",status="200"}' in text
    assert "penny_api_request_duration_seconds_bucket" in text and "penny_workers_alive 1.0" in text
    assert 'penny_api_jobs_submitted_total{kind="stateless"}' in text and "penny_queue_depth" in text


def test_the_worker_exports_its_own_metrics_and_liveness(cluster: Cluster) -> None:
    port = cluster.stack.env_of(f"worker-{cluster.worker_prefix}")["WORKER_METRICS_PORT"]
    cluster.execute("print(1)")
    cluster.execute("1/0")
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    name = cluster.worker_prefix
    assert f'penny_executions_total{{status="success",worker="{name}"}}' in text
    assert f'penny_executions_total{{status="error",worker="{name}"}}' in text
    assert "penny_execution_duration_seconds_bucket" in text and "penny_queue_wait_seconds_count" in text
    assert f'penny_pool_sandboxes{{pool="stateless",state="idle",tier="runc",worker="{name}"}}' in text
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json() == {"alive": True}


def test_long_runs_stream_metrics_and_results_carry_disk_use(cluster: Cluster) -> None:
    code = ("import time\nblock = bytearray(40 * 1024 * 1024)\nblock[::4096] = b'x' * len(block[::4096])\n"
            "open('/workspace/data.bin', 'wb').write(b'z' * 3 * 1024 * 1024)\ntime.sleep(2.6)")
    with requests.post(f"{cluster.url}/api/v1/execute/stream", json={"code": code}, stream=True,
                       timeout=60) as response:
        events = list(parse_sse(response))
    samples = [e["data"] for e in events if e["event"] == "metrics"]
    assert len(samples) >= 2
    assert all(s["memoryBytes"] > 40 * 1024 * 1024 for s in samples)
    assert samples[-1]["diskBytes"] >= 3 * 1024 * 1024 and samples[-1]["elapsedMs"] >= 1000
    result = events[-1]["data"]
    assert result["status"] == "success" and result["metrics"]["diskBytes"] >= 3 * 1024 * 1024
    assert result["metrics"]["peakMemoryBytes"] > 40 * 1024 * 1024


def test_flower_sees_the_worker_and_the_execute_task(cluster: Cluster) -> None:
    port = stack.free_port()
    flower = cluster.stack.start_flower(port)
    try:
        deadline = time.monotonic() + 30
        node = f"penny@{cluster.worker_prefix}"
        while node not in requests.get(f"http://127.0.0.1:{port}/api/workers?refresh=1", timeout=30).json():
            assert time.monotonic() < deadline, "Flower never listed the worker"
            time.sleep(0.5)
        job_id = cluster.execute("print('seen by flower')")["jobId"]
        while True:
            tasks = requests.get(f"http://127.0.0.1:{port}/api/tasks", timeout=30).json()
            # The task is a doorbell without arguments; its result names the job it ran (core.fair_queue).
            if any(t.get("name") == "penny.execute" and job_id in str(t.get("result")) for t in tasks.values()):
                break
            assert time.monotonic() < deadline, "Flower never showed the execute task"
            time.sleep(0.5)
    finally:
        cluster.stack.stop(flower)
        cluster.stack.procs.remove(("flower", flower))


@pytest.fixture
def two_hosts(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    with running_cluster("scale", log_root, workers=2, POOL_SIZE="2", PRELOAD_MODULES="json") as running:
        yield running


@pytest.mark.slow
def test_two_hosts_share_200_stateless_jobs(two_hosts: Cluster) -> None:
    with ThreadPoolExecutor(max_workers=8) as executor:
        results = list(executor.map(lambda i: two_hosts.execute(f"print({i})"), range(200)))
    assert [r["stdout"] for r in results] == [f"{i}\n" for i in range(200)]
    used = Counter(r["worker"] for r in results)
    assert set(used) == {f"{two_hosts.worker_prefix}-1", f"{two_hosts.worker_prefix}-2"}, used


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish(own_cluster: Cluster) -> None:
    job_id = own_cluster.submit("import time\nprint('start', flush=True)\ntime.sleep(2)\nprint('done')")
    for event in own_cluster.events(job_id):
        if event["event"] == "stdout":
            break
    worker = next(proc for name, proc in own_cluster.stack.procs if name.startswith("worker-"))
    worker.send_signal(signal.SIGTERM)
    result = list(own_cluster.events(job_id))[-1]["data"]
    assert result["status"] == "success" and result["stdout"] == "start\ndone\n"
    assert worker.wait(timeout=60) == 0


@pytest.mark.slow
def test_a_redis_restart_is_503_then_recovers_losing_no_accepted_job(own_cluster: Cluster) -> None:
    accepted = own_cluster.submit("import time\nprint('before', flush=True)\ntime.sleep(4)\nprint('after')")
    for event in own_cluster.events(accepted):
        if event["event"] == "stdout":
            break
    redis_proc = next(proc for name, proc in own_cluster.stack.procs if name == "redis")
    own_cluster.stack.stop(redis_proc)
    own_cluster.stack.procs.remove(("redis", redis_proc))
    refused = requests.post(f"{own_cluster.url}/api/v1/jobs", json={"code": "1"}, timeout=30)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    assert requests.get(f"{own_cluster.url}/health", timeout=30).status_code == 503
    port = int(own_cluster.stack.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    own_cluster.stack.start_redis(port)
    deadline = time.monotonic() + 30
    while requests.get(f"{own_cluster.url}/health", timeout=30).status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover after Redis came back"
        time.sleep(0.2)
    result = list(own_cluster.events(accepted))[-1]["data"]
    assert result["status"] == "success" and result["stdout"] == "before\nafter\n"
    assert own_cluster.execute("print('new work')")["stdout"] == "new work\n"
