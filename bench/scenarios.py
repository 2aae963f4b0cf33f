"""The bench's scenarios: each one drives a running stack and returns its figures (ms, per minute, MB).

Stateless load runs through wrk (bench/load.py); scenarios that need a reply before the next request
(sessions, SSE timing, bursts) run from Python, whose own CPU is reported as the load generator's.
Every scenario samples the CPU of each tier before and after (bench/tiers.py) and reports it per execution.
"""

from __future__ import annotations

import json
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from load import run_wrk
from tiers import CpuTime, TierSampler, per_execution_ms

PRINT = {"code": "print(1)"}
NUMPY = {"code": "import numpy as np\nprint(int(np.arange(10).sum()))"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))], 3)


def latency_figures(values_ms: list[float]) -> dict[str, object]:
    points = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)
    return {"count": len(values_ms), "p50_ms": percentile(values_ms, 0.5), "p95_ms": percentile(values_ms, 0.95),
            "p99_ms": percentile(values_ms, 0.99), "mean_ms": round(statistics.fmean(values_ms), 3),
            "cdf_ms": {f"{p * 100:g}": percentile(values_ms, p) for p in points}}


def self_cpu() -> CpuTime:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return CpuTime(usage.ru_utime, usage.ru_stime)


@dataclass
class Bench:
    """A running stack (its API url, Redis client and tier sampler) and the bench's HTTP session."""

    url: str
    redis: Any
    sampler: TierSampler
    api_key: str | None = None
    http: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        if self.api_key:
            self.http.headers["Authorization"] = f"Bearer {self.api_key}"

    @contextmanager
    def measured(self, out: dict[str, Any], executions: Callable[[], int]) -> Iterator[None]:
        """CPU per execution of each tier over the block (the bench's own CPU as `loadgen`)."""
        before, own = self.sampler.snapshot(), self_cpu()
        yield
        delta = self.sampler.snapshot().minus(before)
        tiers = dict(delta.tiers)
        tiers["loadgen"] = tiers.get("loadgen", CpuTime()) + (self_cpu() - own) + out.pop("_wrk_cpu", CpuTime())
        out["cpu"] = per_execution_ms(type(delta)(tiers, delta.machine, delta.machine_idle_s), executions())

    def post(self, path: str, body: dict[str, Any], timeout: float = 120) -> requests.Response:
        return self.http.post(f"{self.url}/api/v1{path}", json=body, timeout=timeout)

    # ---------------------------------------------------------------- stateless, through wrk

    def wrk(self, body: dict[str, Any], expect: str, *, connections: int, seconds: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        result = None

        def count() -> int:
            return result.requests if result else 0

        with self.measured(out, count):
            result = run_wrk(f"{self.url}/api/v1/execute", body, expect, connections=connections,
                             seconds=seconds, api_key=self.api_key)
            out["_wrk_cpu"] = result.loadgen_cpu
        out.update(result.summary())
        return out

    # ---------------------------------------------------------------- sessions

    def spare_session_sandboxes(self, *, newer_than_ms: int) -> int | None:
        """Idle session sandboxes by the workers' heartbeats; None until every heartbeat is newer_than_ms."""
        names = [n.decode() for n in self.redis.smembers("penny:workers")]
        infos = [json.loads(raw) for raw in self.redis.mget([f"penny:worker:{n}" for n in names]) if raw]
        if not infos or any(info["heartbeatMs"] <= newer_than_ms for info in infos):
            return None
        return sum(int(info["sessionPool"]["idle"]) for info in infos)

    def wait_for_spare(self, wanted: int = 1, timeout_s: float = 120) -> None:
        since_ms = int(time.time() * 1000)
        deadline = time.monotonic() + timeout_s
        while (self.spare_session_sandboxes(newer_than_ms=since_ms) or 0) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError("the session pool did not refill")
            time.sleep(0.05)

    def wait_for_settled_pool(self, timeout_s: float = 180) -> int:
        """Wait until every worker's session pool holds its (demand-following) size, all started; returns it."""
        since_ms = int(time.time() * 1000)
        deadline = time.monotonic() + timeout_s
        while True:
            names = [n.decode() for n in self.redis.smembers("penny:workers")]
            infos = [json.loads(raw) for raw in self.redis.mget([f"penny:worker:{n}" for n in names]) if raw]
            pools = [info["sessionPool"] for info in infos if info["heartbeatMs"] > since_ms]
            if pools and len(pools) == len(infos) and all(
                    int(p["idle"]) >= int(p["size"]) and int(p["starting"]) == 0 for p in pools):
                return sum(int(p["size"]) for p in pools)
            if time.monotonic() > deadline:
                raise TimeoutError("the session pool did not settle")
            time.sleep(0.1)

    def create_session(self) -> str:
        response = self.post("/sessions", {})
        if response.status_code != 201:
            raise RuntimeError(f"session create: {response.status_code} {response.text}")
        return str(response.json()["sessionId"])

    def delete_session(self, session_id: str) -> None:
        self.http.delete(f"{self.url}/api/v1/sessions/{session_id}", timeout=60)

    def session_create(self, count: int) -> dict[str, Any]:
        """Create latency from a warm pool (waiting for a spare sandbox before each create)."""
        latencies: list[float] = []
        out: dict[str, Any] = {}
        with self.measured(out, lambda: len(latencies)):
            for _ in range(count):
                self.wait_for_spare()
                started = time.perf_counter()
                session_id = self.create_session()
                latencies.append((time.perf_counter() - started) * 1000)
                self.delete_session(session_id)
        out.update(latency_figures(latencies))
        return out

    def in_session(self, count: int) -> dict[str, Any]:
        """print(1) in one session, back to back."""
        session_id = self.create_session()
        body = {**PRINT, "sessionId": session_id}
        for _ in range(10):
            self.post("/execute", body)
        latencies: list[float] = []
        out: dict[str, Any] = {}
        with self.measured(out, lambda: len(latencies)):
            for _ in range(count):
                started = time.perf_counter()
                response = self.post("/execute", body)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.json().get("stdout") != "1\n":
                    raise RuntimeError(f"in-session execute: {response.text}")
        self.delete_session(session_id)
        out.update(latency_figures(latencies))
        return out

    def session_burst(self, count: int) -> dict[str, Any]:
        """`count` session creates at once (each from its own thread), then all deleted."""
        latencies: list[float] = []
        created: list[str] = []
        failures: list[str] = []
        gate = threading.Barrier(count)

        def one() -> None:
            gate.wait()
            started = time.perf_counter()
            try:
                created.append(self.create_session())
                latencies.append((time.perf_counter() - started) * 1000)
            except Exception as exc:  # noqa: BLE001 (reported as a failure of the scenario)
                failures.append(str(exc))

        threads = [threading.Thread(target=one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for session_id in created:
            self.delete_session(session_id)
        return {**latency_figures(latencies or [0.0]), "failed": len(failures)}

    # ---------------------------------------------------------------- SSE

    def sse_first_stdout(self, count: int) -> dict[str, Any]:
        """ms from the code's print (its wall clock, shared with the host) to the stdout event at the client."""
        code = "import time\nprint(time.time_ns(), flush=True)"
        delays: list[float] = []
        for _ in range(count):
            with self.http.post(f"{self.url}/api/v1/execute/stream", json={"code": code}, stream=True,
                                timeout=60) as response:
                event = None
                for raw in response.iter_lines(chunk_size=1):
                    line = raw.decode()
                    if line.startswith("event:"):
                        event = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and event == "stdout":
                        arrived = time.time_ns()
                        printed = int(json.loads(line.split(":", 1)[1])["text"].split()[0])
                        delays.append((arrived - printed) / 1e6)
                        break
        return latency_figures(delays)

    # ---------------------------------------------------------------- capacity

    def idle_sessions(self, count: int, *, pool_size: int, tier_label: str | None = None,
                      worker_prefix: str = "") -> dict[str, Any]:
        """Create `count` idle sessions (x = 1 in each), check every one answers print(1), report host memory
        per session and the time it took; all deleted afterwards."""
        self.wait_for_spare(pool_size)
        before = mem_available_bytes()
        created: list[str] = []
        started = time.perf_counter()
        try:
            for _ in range(count):
                created.append(self.create_session())
                self.post("/execute", {"code": "x = 1", "sessionId": created[-1]})
            create_s = time.perf_counter() - started
            self.wait_for_spare(pool_size, timeout_s=300)
            after = mem_available_bytes()
            cgroups = session_container_memory(tier_label=tier_label, worker_prefix=worker_prefix)
            answering = sum(1 for session_id in created
                            if self.post("/execute", {**PRINT, "sessionId": session_id}).json().get("stdout")
                            == "1\n")
        finally:
            for session_id in created:
                self.delete_session(session_id)
        return {"sessions": len(created), "answering": answering, "create_all_s": round(create_s, 1),
                "memory_per_session_mb": round((before - after) / max(len(created), 1) / 2**20, 2),
                **cgroups}


def session_container_memory(cgroup_root: Path = Path("/sys/fs/cgroup/memory/docker"), *,
                             tier_label: str | None = None, worker_prefix: str = "") -> dict[str, float]:
    """Mean memory of the session sandboxes (of one tier: its penny.tier label; of the workers named
    worker_prefix...: this bench's, not another stack's on the same Docker) from their cgroups (v1): charged
    usage, and anonymous rss."""
    import docker

    client = docker.from_env(timeout=60)
    labels = ["penny.mode=session", *([f"penny.tier={tier_label}"] if tier_label else [])]
    ids = [c.id for c in client.containers.list(sparse=True, filters={"label": labels})
           if (c.attrs.get("Labels") or {}).get("penny.worker", "").startswith(worker_prefix)]
    usage, rss = [], []
    for container_id in ids:
        folder = cgroup_root / container_id
        try:
            usage.append(int((folder / "memory.usage_in_bytes").read_text()))
            stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
            rss.append(int(stat["total_rss"]))
        except (OSError, KeyError):
            continue
    if not usage:
        return {}
    return {"containers": len(usage), "cgroup_usage_mb_mean": round(statistics.fmean(usage) / 2**20, 2),
            "cgroup_rss_mb_mean": round(statistics.fmean(rss) / 2**20, 2)}


def mem_available_bytes() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")
