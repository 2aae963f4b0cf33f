"""WorkerHost: everything one worker host runs besides Celery itself.

The warm pool, the job runner, and two background threads: the heartbeat (which also reaps jobs of
dead workers) and the cancel listener.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import docker
import docker.errors
import redis
import requests

from core import keys
from core.jobs import JobStore
from core.registry import WorkerRegistry
from core.settings import Settings
from workers.hardening import LABEL_SANDBOX, LABEL_WORKER
from workers.pool import SandboxPool
from workers.runner import JobRunner
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 1.0


class WorkerHost:
    """Owns the Docker client, the pool and the runner of one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
        self.store = JobStore(self._redis, retention_s=settings.job_retention_seconds)
        self.registry = WorkerRegistry(self._redis, ttl_s=settings.heartbeat_ttl_seconds)
        self._docker = docker.from_env(timeout=60)
        self.pool = SandboxPool(self._start_sandbox, size=settings.pool_size,
                                max_jobs=settings.container_max_jobs)
        self.runner = JobRunner(settings, self.store, self.pool)
        self._stopped = threading.Event()
        self._started_ms = int(time.time() * 1000)
        self._threads: list[threading.Thread] = []

    def _start_sandbox(self, pool_id: str) -> Sandbox:
        return Sandbox.start(self._docker, self.settings, pool_id=pool_id)

    def start(self) -> None:
        """Remove our leftovers, start filling the pool, announce ourselves, then start the threads."""
        self.remove_leftover_containers()
        self.pool.start()
        self._beat()
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._cancel_loop, "cancel-listener")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def remove_leftover_containers(self) -> int:
        """Remove sandboxes a previous run of this worker left behind (after a crash)."""
        filters = {"label": [f"{LABEL_SANDBOX}=1", f"{LABEL_WORKER}={self.settings.worker_name}"]}
        removed = 0
        for container in self._docker.containers.list(all=True, filters=filters):
            try:
                container.remove(force=True)
                removed += 1
            except (docker.errors.DockerException, requests.RequestException):
                pass
        if removed:
            log.info("removed %d leftover sandbox containers", removed)
        return removed

    def _beat(self) -> None:
        stats = self.pool.stats()
        self.registry.beat(self.settings.worker_name, {
            "name": self.settings.worker_name,
            "pid": os.getpid(),
            "startedMs": self._started_ms,
            "heartbeatMs": int(time.time() * 1000),
            "pool": {"idle": stats.idle, "busy": stats.busy, "starting": stats.starting, "size": stats.size},
            "poolError": self.pool.last_error,
        })

    def _heartbeat_loop(self) -> None:
        while not self._stopped.wait(HEARTBEAT_INTERVAL_S):
            try:
                self._beat()
                reaped = self.store.reap_lost_jobs(self.registry.alive())
                for job_id in reaped:
                    log.warning("job %s: its worker is gone; ended worker_lost", job_id)
            except redis.RedisError as exc:
                log.error("heartbeat failed: %s", exc)

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

    def close(self) -> None:
        """Leave the cluster and destroy the pool (after Celery has finished the running tasks)."""
        self._stopped.set()
        try:
            self.registry.leave(self.settings.worker_name)
        except redis.RedisError:
            pass
        self.pool.close()
        for thread in self._threads:
            thread.join(timeout=5)
