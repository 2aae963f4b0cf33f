"""The API's Prometheus metrics: its own processes (gunicorn multiprocess mode) and cluster gauges from Redis.

Per-execution counters and histograms come from each worker host's own exporter (workers/metrics.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import redis
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.services import Services

REQUESTS = Counter("penny_api_requests_total", "HTTP requests, by endpoint and status",
                   ["method", "endpoint", "status"])
REQUEST_SECONDS = Histogram("penny_api_request_duration_seconds", "Time to answer (streams: to the first byte)",
                            ["endpoint"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30))
JOBS_SUBMITTED = Counter("penny_api_jobs_submitted_total", "Jobs accepted, by kind", ["kind"])
AUDIT_WRITE_FAILURES = Counter("penny_audit_write_failures_total",
                               "Failed appends to the audit file (the records stay in Redis and are retried)")
SSE_CLIENTS = Gauge("penny_sse_clients", "Server-Sent Events streams open now", multiprocess_mode="livesum")

CONTENT_TYPE = CONTENT_TYPE_LATEST


class ClusterCollector(Collector):
    """Cluster-wide gauges read from Redis at scrape time: queue, workers, pools, sessions."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        try:
            workers = self._services.registry.alive()
            depth = self._services.admission.queue_depth()
        except redis.RedisError:
            return
        yield GaugeMetricFamily("penny_queue_depth", "Stateless jobs waiting in the shared queue", value=depth)
        yield GaugeMetricFamily("penny_workers_alive", "Worker hosts with a live heartbeat", value=len(workers))
        pool = GaugeMetricFamily("penny_cluster_pool_sandboxes", "Stateless sandboxes, by state", labels=["state"])
        for state in ("idle", "busy", "starting"):
            pool.add_metric([state], sum(int(w.get("pool", {}).get(state, 0)) for w in workers.values()))
        yield pool
        yield GaugeMetricFamily("penny_cluster_sessions_active", "Live sessions on all hosts",
                                value=sum(int(w.get("sessions", 0)) for w in workers.values()))


def render(services: Services) -> bytes:
    """The text exposition of this API (all its processes) plus the cluster gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    cluster = CollectorRegistry()
    cluster.register(ClusterCollector(services))
    return generate_latest(processes) + generate_latest(cluster)
