"""`make bench`: latency and throughput of `print(1)` through HTTP on a local stack (not a test).

Starts its own Redis, one worker host and the API (as `make run` does), then measures:
sequential p50/p95 latency, and throughput at 4 and 16 concurrent clients; every figure twice, so the
machine's noise shows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per run")
    parser.add_argument("--seconds", type=float, default=15.0, help="duration of each throughput run")
    parser.add_argument("--workers", type=int, default=1, help="worker hosts to start")
    args = parser.parse_args()
    report: dict[str, object] = {}
    with stack.local_stack(workers=args.workers, worker_prefix="bench") as (_, url):
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
    out = Path(".cache") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
