"""WorkerHost: everything one worker host runs besides Celery itself.

The warm pools, the job runner, and two background threads: the heartbeat (which also reaps jobs of
dead workers and sweeps the queue, core.queue_sweep) and the cancel listener.

One stateless pool (fixed size) and one session pool (following demand) per isolation tier the settings
name (core.isolation): a runc-only cluster has one of each, as before. The fair queue and the Celery queue
are shared: every host serves every tier.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path

import docker
import docker.errors
import redis
import requests
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from core import keys
from core.errors import ConfigError
from core.fair_queue import FairQueue
from core.isolation import Tier
from core.jobs import JobStore
from core.policies import PackagePolicy
from core.queue_sweep import QueueSweep
from core.reaper import reap
from core.redis_client import connect
from core.registry import WorkerRegistry
from core.session_files import FileTransfers
from core.session_setup import SessionSetups
from core.sessions import SessionStore
from core.settings import Settings
from workers import egress, resources
from workers.backend import DockerBackend, SandboxBackend
from workers.hardening import LABEL_SANDBOX, LABEL_WORKER
from workers.incarnation import new_incarnation, reap_previous
from workers.metrics import WorkerMetrics
from workers.packages import PackageInstaller
from workers.pool import PoolStats, SandboxPool
from workers.pool_demand import DemandTracker
from workers.probe import start_probe
from workers.runner import JobRunner
from workers.sandbox import Sandbox
from workers.session_files import SessionOps
from workers.sessions import SessionManager

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0
REDIS_RETRIES = 60
RESOURCE_SAMPLE_EVERY = 2  # heartbeats


class WorkerHost:
    """Owns the Docker client, the pool and the runner of one worker process."""

    def __init__(self, settings: Settings, *, ring: Callable[[], None]) -> None:
        """ring() sends one `penny.execute` doorbell (the queue sweep rings the doorbells that were lost)."""
        self.settings = settings
        self._ring = ring
        # Ride out a Redis restart: every command retries with backoff for about a minute, so a running
        # job's output and result are written once Redis is back instead of being lost.
        self._redis = connect(
            settings, health_check_interval=30, socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), REDIS_RETRIES),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        self.store = JobStore.from_settings(self._redis, settings)
        self.registry = WorkerRegistry(self._redis, ttl_s=settings.heartbeat_ttl_seconds)
        self._docker = docker.from_env(timeout=60)
        self._backend: SandboxBackend = DockerBackend(self._docker, settings)
        self.sessions = SessionStore(self._redis, self.store, retention_s=settings.job_retention_seconds)
        self.fair_queue = FairQueue(self._redis)
        self.queue_sweep = QueueSweep(self._redis, self.store)
        self._setups = SessionSetups(self._redis)
        self.pools = {tier: self._stateless_pool(tier) for tier in settings.tiers}
        self.session_pools = {tier: self._session_pool(tier) for tier in settings.tiers}
        self.metrics = WorkerMetrics(settings.worker_name)
        self.installer = PackageInstaller(PackagePolicy.load(Path(settings.policy_dir)),
                                          Path(settings.wheel_cache_dir),
                                          install_timeout_ms=settings.package_install_timeout_ms)
        self._started_ms = int(time.time() * 1000)
        self.incarnation = new_incarnation()
        self.runner = JobRunner(settings, self.store, self.pools, self.metrics, self.installer,
                                session_ops=SessionOps(settings, FileTransfers(
                                    self._redis, budget=settings.tenant_max_transfer_bytes)),
                                incarnation=self.incarnation)
        self.session_manager = SessionManager(settings, self._redis, self.sessions, self.session_pools,
                                              self.runner)
        self._samples: dict[str, resources.Sample] = {}
        self._beats = 0
        self._last_beat_ok = 0.0
        self._packages_announced = False
        self._probe: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def _stateless_pool(self, tier: Tier) -> SandboxPool:
        return SandboxPool(lambda pool_id: self._announce_packages(self._backend.start(pool_id, tier=tier)),
                           size=self.settings.pool_size_of(tier), max_jobs=self.settings.container_max_jobs, tier=tier)

    def _session_pool(self, tier: Tier) -> SandboxPool:
        """Sessions come in bursts: their pool follows demand between the tier's session pool size and
        SESSION_POOL_MAX_SIZE, never past the sessions this host may still open (all tiers together)."""
        settings = self.settings
        floor = settings.session_pool_size_of(tier)
        return SandboxPool(
            lambda pool_id: self._announce_packages(self._backend.start(pool_id, session=True, tier=tier)),
            size=floor, max_jobs=settings.container_max_jobs, tier=tier,
            demand=DemandTracker(minimum=floor, maximum=max(floor, settings.session_pool_max_size)),
            ceiling=lambda: settings.max_sessions_per_host - self.session_manager.count())

    def _all_pools(self) -> list[SandboxPool]:
        return [*self.pools.values(), *self.session_pools.values()]

    def _announce_packages(self, sandbox: Sandbox) -> Sandbox:
        """Publish the image's preinstalled libraries once (GET /packages shows them)."""
        if not self._packages_announced and sandbox.preinstalled:
            self._redis.hset(keys.PREINSTALLED_PACKAGES, mapping=sandbox.preinstalled)
            self._packages_announced = True
        return sandbox

    def start(self) -> None:
        """End what an earlier process of our name left, remove its containers, start filling the pool,
        announce ourselves, then start the threads."""
        reap_previous(self.settings.worker_name, self.incarnation, started_ms=self._started_ms, jobs=self.store,
                      sessions=self.sessions)
        self.remove_leftover_containers()
        for pool in self.pools.values():
            pool.start()
        for pool in self.session_pools.values():
            pool.start(refill_threads=2)
        self._beat()
        if self.settings.worker_metrics_port:
            self._probe = start_probe(self.settings.worker_metrics_port, self.metrics.registry, self.is_alive)
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._cancel_loop, "cancel-listener")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def create_session(self, session_id: str) -> None:
        """Create the session the API reserved here, with the variables and packages it stored in Redis."""
        setup = self._setups.take(session_id)
        if setup is None:
            self.session_manager.refuse(session_id, "the session's setup expired before its worker read it")
            return
        self.session_manager.create(session_id, setup.variables, setup.packages, isolation=setup.isolation)

    def remove_leftover_containers(self) -> int:
        """Remove sandboxes a previous run of this worker left behind (after a crash)."""
        filters = {"label": [f"{LABEL_SANDBOX}=1", f"{LABEL_WORKER}={self.settings.worker_name}"]}
        removed = 0
        for container in self._docker.containers.list(all=True, sparse=True, filters=filters):
            try:
                container.remove(force=True)
                removed += 1
            except (docker.errors.DockerException, requests.RequestException):
                pass
        if removed:
            log.info("removed %d leftover sandbox containers", removed)
        return removed

    def is_alive(self) -> bool:
        """Liveness: the heartbeat reached Redis recently (what Docker and Kubernetes probe)."""
        return time.monotonic() - self._last_beat_ok < 3 * HEARTBEAT_INTERVAL_S + 2

    def _beat(self) -> None:
        tiers: dict[str, dict[str, dict[str, int]]] = {}
        for tier in self.pools:
            stats, session_stats = self.pools[tier].stats(), self.session_pools[tier].stats()
            tiers[tier.value] = {"pool": _figures(stats), "sessionPool": _figures(session_stats, busy=False)}
            self.metrics.pools(tier.value, stateless=_figures(stats, size=False),
                               session=_figures(session_stats, busy=False, size=False))
        self.metrics.sessions.set(self.session_manager.count())
        self.registry.beat(self.settings.worker_name, {
            "name": self.settings.worker_name,
            "pid": os.getpid(),
            "incarnation": self.incarnation,
            "startedMs": self._started_ms,
            "heartbeatMs": int(time.time() * 1000),
            # Every tier's pools together (what a runc-only cluster's hosts always reported), then each tier's.
            "pool": _sum(figures["pool"] for figures in tiers.values()),
            "sessionPool": _sum(figures["sessionPool"] for figures in tiers.values()),
            "tiers": tiers,
            "sessions": self.session_manager.count(),
            "maxSessions": self.settings.max_sessions_per_host,
            "poolError": next((pool.last_error for pool in self._all_pools() if pool.last_error), None),
        })
        self._last_beat_ok = time.monotonic()

    def _restore_egress_rules(self) -> None:
        try:
            egress.restore_firewall(egress.EgressNetwork.from_settings(self.settings))
        except ConfigError as exc:
            log.critical("the egress firewall rules cannot be restored; sandboxes may be unfiltered: %s", exc)

    def _heartbeat_loop(self) -> None:
        while not self._stopped.wait(HEARTBEAT_INTERVAL_S):
            try:
                self._beat()
                lost_jobs, lost_sessions = reap(self.registry, self.store, self.sessions)
                for job_id in lost_jobs:
                    log.warning("job %s: its worker is gone; ended worker_lost", job_id)
                for session_id in lost_sessions:
                    log.warning("session %s: its worker is gone; session lost", session_id)
                self.queue_sweep.sweep(self.settings.worker_name, self._ring)
                self.session_manager.maintain()
                for pool in self.session_pools.values():
                    pool.maintain()
                self.registry.forget_silent(has_sessions=lambda name: self.sessions.count_of_worker(name) > 0)
                self._beats += 1
                if self._beats % RESOURCE_SAMPLE_EVERY == 0:
                    self._sample_sessions()
                if self.settings.enable_networking and self._beats % egress.RECHECK_EVERY_BEATS == 0:
                    self._restore_egress_rules()
            except redis.RedisError as exc:
                log.error("heartbeat failed: %s", exc)
            except Exception:  # a dead heartbeat would make every other host declare this one lost
                log.exception("heartbeat failed")

    def _sample_sessions(self) -> None:
        figures: dict[str, dict[str, float | int | None]] = {}
        for session_id, container_id in self.session_manager.container_ids().items():
            now = resources.sample(container_id)
            if now is None:
                continue
            before = self._samples.get(session_id)
            self._samples[session_id] = now
            figures[session_id] = {"memoryBytes": now.memory_bytes, "diskBytes": now.disk_bytes,
                                   "cpuPercent": resources.cpu_percent(before, now) if before else None}
        for gone in set(self._samples) - set(figures):
            self._samples.pop(gone, None)
        self.metrics.sandbox_memory.set(sum(int(f["memoryBytes"] or 0) for f in figures.values()))
        self.metrics.sandbox_cpu.set(sum(float(f["cpuPercent"] or 0) for f in figures.values()))
        if figures:
            self.sessions.set_resources(figures)

    def _cancel_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(keys.CANCEL_CHANNEL)
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        job_id = message["data"].decode()
                        if self.runner.cancel(job_id):
                            log.info("job %s: cancel requested", job_id)
            except redis.RedisError as exc:
                log.error("cancel listener lost Redis: %s", exc)
                self._stopped.wait(1.0)
            except Exception:  # without the listener no running job could be cancelled
                log.exception("cancel listener failed")
                self._stopped.wait(1.0)

    def close(self) -> None:
        """Leave the cluster and destroy the pool (after Celery has finished the running tasks)."""
        self.session_manager.close(drain_timeout_s=self.settings.max_execution_time / 1000 + 5)
        self._stopped.set()
        try:
            self.registry.leave(self.settings.worker_name)
        except redis.RedisError:
            pass
        for pool in self._all_pools():
            pool.close()
        if self._probe is not None:
            self._probe.shutdown()
        for thread in self._threads:
            thread.join(timeout=5)


def _figures(stats: PoolStats, *, busy: bool = True, size: bool = True) -> dict[str, int]:
    """A pool's figures as the heartbeat and the metrics show them (a session pool has no busy sandboxes: a
    session's leaves the pool)."""
    figures = {"idle": stats.idle, **({"busy": stats.busy} if busy else {}), "starting": stats.starting}
    return {**figures, "size": stats.size} if size else figures


def _sum(pools: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for figures in pools:
        for name, value in figures.items():
            total[name] = total.get(name, 0) + value
    return total
