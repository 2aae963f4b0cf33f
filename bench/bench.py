"""`make bench`: latency and throughput of `print(1)` through HTTP on a local stack (not a test).

Starts its own Redis, --workers worker hosts and the API (as `make run` does), then measures:
sequential p50/p95 latency, throughput at 4 and 16 concurrent clients, and for sessions: create and
in-session latency and the memory an idle session costs; every figure twice, so the machine's noise shows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
import stack  # noqa: E402

CODE = "print(1)"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def sequential(url: str, count: int) -> dict[str, float]:
    """Latency of one client sending `count` requests back to back, in ms."""
    session = requests.Session()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(f"{url}/api/v1/execute", json={"code": CODE}, timeout=60)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and response.json()["stdout"] == "1\n", response.text
    return {"p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "mean_ms": statistics.fmean(latencies)}


def throughput(url: str, clients: int, duration_s: float) -> dict[str, float]:
    """Executions per minute with `clients` concurrent clients for duration_s."""
    done = [0] * clients
    failures = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop_at = time.perf_counter() + duration_s

    def client(index: int) -> None:
        session = requests.Session()
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            response = session.post(f"{url}/api/v1/execute", json={"code": CODE}, timeout=60)
            if response.status_code == 200 and response.json()["stdout"] == "1\n":
                done[index] += 1
                latencies[index].append((time.perf_counter() - started) * 1000)
            else:
                failures[index] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged = [value for per_client in latencies for value in per_client]
    return {"per_min": sum(done) / elapsed * 60, "failures": sum(failures),
            "p50_ms": percentile(merged, 0.5), "p95_ms": percentile(merged, 0.95)}


def _session_pool_idle(client: Any, *, newer_than_ms: int) -> int | None:
    """Idle session sandboxes by the workers' heartbeats (client: the stack's Redis client, with
    REDIS_URL's credentials and TLS); None until every heartbeat is newer_than_ms."""
    names = [n.decode() for n in client.smembers("penny:workers")]
    infos = [json.loads(raw) for raw in client.mget([f"penny:worker:{n}" for n in names]) if raw]
    if not infos or any(info["heartbeatMs"] <= newer_than_ms for info in infos):
        return None
    return sum(int(info["sessionPool"]["idle"]) for info in infos)


def _wait_for_spare_sandbox(client: Any, wanted: int = 1, timeout_s: float = 60) -> None:
    """Wait until a heartbeat sent after this call reports `wanted` idle session sandboxes."""
    since_ms = int(time.time() * 1000)
    deadline = time.monotonic() + timeout_s
    while (_session_pool_idle(client, newer_than_ms=since_ms) or 0) < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError("the session pool did not refill")
        time.sleep(0.05)


def _mem_available_bytes() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def sessions(url: str, client: Any, *, count: int, pool_size: int) -> dict[str, float]:
    """Session create latency (from a warm pool), in-session print(1) latency, memory per idle session."""
    session = requests.Session()
    create_ms = []
    for _ in range(20):
        _wait_for_spare_sandbox(client)
        started = time.perf_counter()
        response = session.post(f"{url}/api/v1/sessions", json={}, timeout=60)
        create_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
        session.delete(f"{url}/api/v1/sessions/{response.json()['sessionId']}", timeout=60)
    session_id = session.post(f"{url}/api/v1/sessions", json={}, timeout=60).json()["sessionId"]
    execute_ms = []
    for _ in range(200):
        started = time.perf_counter()
        response = session.post(f"{url}/api/v1/execute", json={"code": CODE, "sessionId": session_id}, timeout=60)
        execute_ms.append((time.perf_counter() - started) * 1000)
        assert response.json()["stdout"] == "1\n", response.text
    session.delete(f"{url}/api/v1/sessions/{session_id}", timeout=60)
    _wait_for_spare_sandbox(client, pool_size)
    time.sleep(2)  # let the deleted containers' memory be returned before the baseline
    before = _mem_available_bytes()
    created = []
    for _ in range(count):
        created.append(session.post(f"{url}/api/v1/sessions", json={}, timeout=120).json()["sessionId"])
        session.post(f"{url}/api/v1/execute", json={"code": "x = 1", "sessionId": created[-1]}, timeout=60)
    _wait_for_spare_sandbox(client, pool_size, timeout_s=120)
    time.sleep(2)
    after = _mem_available_bytes()
    for session_id in created:
        session.delete(f"{url}/api/v1/sessions/{session_id}", timeout=60)
    return {"create_p50_ms": percentile(create_ms, 0.5), "create_p95_ms": percentile(create_ms, 0.95),
            "execute_p50_ms": percentile(execute_ms, 0.5), "execute_p95_ms": percentile(execute_ms, 0.95),
            "memory_per_idle_session_mb": (before - after) / count / 2**20}


def package_installs(url: str, package: str) -> dict[str, float]:
    """Seconds to install `package` into a fresh session: the first time (maybe downloading) and again."""
    session = requests.Session()
    timings = []
    for _ in range(2):
        session_id = session.post(f"{url}/api/v1/sessions", json={}, timeout=120).json()["sessionId"]
        started = time.perf_counter()
        report = session.post(f"{url}/api/v1/packages/install", json={"sessionId": session_id, "packages": [package]},
                              timeout=600).json()
        timings.append(time.perf_counter() - started)
        assert report["failed"] == [], report
        session.delete(f"{url}/api/v1/sessions/{session_id}", timeout=60)
    return {"first_s": timings[0], "cached_s": timings[1]}


def seccomp_cost(image: str) -> dict[str, object]:
    """The kernel seccomp filter's cost, measured in the sandbox image under the sandboxes' own profile."""
    import docker

    repo = Path(__file__).resolve().parent.parent
    profile = (repo / "deploy" / "seccomp" / "penny-sandbox.json").read_text()
    output = docker.from_env(timeout=120).containers.run(
        image, ["python3", "/bench/seccomp_cost.py"], remove=True, read_only=True, network_mode="none",
        cap_drop=["ALL"], security_opt=["no-new-privileges:true", f"seccomp={profile}"], user="1000:1000",
        environment={"PENNY_SECCOMP": "required"},
        volumes={str(repo / "bench"): {"bind": "/bench", "mode": "ro"}})
    return dict(json.loads(output))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per run")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each throughput run")
    parser.add_argument("--workers", type=int, default=1, help="worker hosts to start")
    parser.add_argument("--sessions", type=int, default=50, help="idle sessions for the memory figure (0: skip)")
    args = parser.parse_args()
    report: dict[str, object] = {}
    cost = seccomp_cost("penny-sandbox:latest")
    report["seccomp"] = cost
    calls = cost["syscalls"]
    print(f"seccomp filter: built once {cost['build_once_ms']:.2f} ms; loaded per kernel p50 "
          f"{cost['load_p50_ms']:.2f} ms, p95 {cost['load_p95_ms']:.2f} ms (before the kernel's request); "
          f"getppid {calls['before']['getppid_ns']:.0f} -> {calls['after']['getppid_ns']:.0f} ns, "
          f"close {calls['before']['close_ns']:.0f} -> {calls['after']['close_ns']:.0f} ns per call", flush=True)
    # One tenant (the API runs open) creates all the benchmark's sessions: lift its quotas.
    with stack.local_stack(workers=args.workers, worker_prefix="bench", TENANT_MAX_SESSIONS="10000",
                           TENANT_MAX_ACTIVE_JOBS="100000") as (running, url):
        sequential(url, 30)  # warm-up: every pooled sandbox and connection used once
        for run in (1, 2):
            figures = sequential(url, args.requests)
            report[f"sequential_run{run}"] = figures
            print(f"sequential run {run}: p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms",
                  flush=True)
        for clients in (4, 16):
            for run in (1, 2):
                figures = throughput(url, clients, args.seconds)
                report[f"clients{clients}_run{run}"] = figures
                print(f"{clients:>2} clients run {run}: {figures['per_min']:.0f} executions/min "
                      f"(p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
                      f"{figures['failures']} failed)", flush=True)
        for run in (1, 2) if args.sessions else ():
            figures = sessions(url, running.redis_client(), count=args.sessions, pool_size=2 * args.workers)
            report[f"sessions_run{run}"] = figures
            print(f"sessions run {run}: create p50 {figures['create_p50_ms']:.1f} ms, "
                  f"p95 {figures['create_p95_ms']:.1f} ms; in-session print(1) p50 {figures['execute_p50_ms']:.1f} ms, "
                  f"p95 {figures['execute_p95_ms']:.1f} ms; {figures['memory_per_idle_session_mb']:.1f} MB per idle "
                  f"session", flush=True)
        if args.sessions:
            figures = package_installs(url, "scikit-learn")
            report["install_scikit_learn"] = figures
            print(f"install scikit-learn into a session: first {figures['first_s']:.2f} s, "
                  f"from the cache {figures['cached_s']:.2f} s", flush=True)
    out = Path(".cache") / f"bench-{args.workers}-hosts.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
