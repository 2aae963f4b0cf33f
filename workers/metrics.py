"""Prometheus metrics of one worker host, served by its own exporter (workers/probe.py).

Each worker host is scraped separately (one target per host, as for node exporters); the API's /metrics
covers the API processes and the cluster-wide figures it reads from Redis.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class WorkerMetrics:
    """The worker's instruments, on a registry of their own (no process-global state)."""

    def __init__(self, worker: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"worker": worker}
        self.executions = Counter("penny_executions_total", "Executions finished, by final status",
                                  ["worker", "status"], registry=self.registry)
        self.duration = Histogram("penny_execution_duration_seconds", "Time the code ran", ["worker"],
                                  buckets=_LATENCY_BUCKETS_S, registry=self.registry).labels(**labels)
        self.queue_wait = Histogram("penny_queue_wait_seconds", "Time from acceptance to start", ["worker"],
                                    buckets=_LATENCY_BUCKETS_S, registry=self.registry).labels(**labels)
        self.sandboxes = Gauge("penny_pool_sandboxes", "Sandboxes by isolation tier, pool and state",
                               ["worker", "tier", "pool", "state"], registry=self.registry)
        self.sessions = Gauge("penny_sessions_active", "Live sessions on this host", ["worker"],
                              registry=self.registry).labels(**labels)
        self.sandbox_memory = Gauge("penny_sandbox_memory_bytes", "Memory in use by this host's session sandboxes",
                                    ["worker"], registry=self.registry).labels(**labels)
        self.sandbox_cpu = Gauge("penny_sandbox_cpu_percent", "CPU use of this host's session sandboxes, % of one core",
                                 ["worker"], registry=self.registry).labels(**labels)
        self._worker = worker

    def finished(self, status: str, *, duration_ms: int, queued_ms: int) -> None:
        """Count one finished execution."""
        self.executions.labels(worker=self._worker, status=status).inc()
        self.duration.observe(duration_ms / 1000)
        self.queue_wait.observe(queued_ms / 1000)

    def pools(self, tier: str, **states: dict[str, int]) -> None:
        """Set one tier's pool gauges: pools("runc", stateless={"idle": 3, ...}, session={...})."""
        for pool, figures in states.items():
            for state, value in figures.items():
                self.sandboxes.labels(worker=self._worker, tier=tier, pool=pool, state=state).set(value)
