"""What the API's routes use: the job store, worker registry, admission control and the dispatcher."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import redis
from redis import Redis

from core import keys
from core.analysis import CodeAnalyzer
from core.audit import AuditTrail
from core.errors import Overloaded, Unavailable
from core.fair_queue import FairQueue
from core.jobs import JobStore
from core.policies import FilesystemPolicy, ImportPolicy, PackagePolicy
from core.redis_client import RedisEndpoint, connect
from core.registry import WorkerRegistry
from core.session_files import FileTransfers
from core.session_setup import SessionSetups
from core.sessions import SessionStore
from core.settings import Settings
from core.tenants import Tenants

ALIVE_CACHE_S = 1.0


class Dispatcher(Protocol):
    """Hands work to the worker cluster: a task name, its arguments, and the queue that routes it."""

    def send(self, task: str, args: list[Any], queue: str) -> None: ...


class CeleryDispatcher:
    """Sends tasks by name through a Celery producer (the API never imports workers/)."""

    def __init__(self, settings: Settings) -> None:
        from celery import Celery

        self._app = Celery("penny-api", set_as_current=False)
        self._app.conf.update(RedisEndpoint.from_settings(settings).celery_conf(),
                              broker_connection_retry_on_startup=True)

    def send(self, task: str, args: list[Any], queue: str) -> None:
        self._app.send_task(task, args=args, queue=queue)


class Admission:
    """Refuses work the cluster cannot take: 503 with no live worker, 429 when the queue is full."""

    def __init__(self, client: redis.Redis, registry: WorkerRegistry, *, max_queue_depth: int,
                 heartbeat_ttl_s: int) -> None:
        self._redis = client
        self._registry = registry
        self._max_queue_depth = max_queue_depth
        self._ttl_ms = heartbeat_ttl_s * 1000
        self._alive: dict[str, Any] = {}
        self._alive_until = 0.0

    def alive_workers(self) -> dict[str, Any]:
        """Live workers, re-read at most once a second per API process, and always once the oldest
        cached heartbeat may have expired (so a dead worker is never taken for alive from the cache)."""
        now = time.monotonic()
        if not self._alive or now >= self._alive_until:
            self._alive = self._registry.alive()
            wall_ms = time.time() * 1000
            expiries_s = [(int(info.get("heartbeatMs", 0)) + self._ttl_ms - wall_ms) / 1000
                          for info in self._alive.values()]
            self._alive_until = now + min([ALIVE_CACHE_S, *expiries_s])
        return self._alive

    def queue_depth(self) -> int:
        return int(cast(int, self._redis.llen(keys.SHARED_QUEUE)))

    def check(self) -> None:
        """Raise Unavailable or Overloaded when a new job should not be accepted."""
        if not self.alive_workers():
            raise Unavailable("no worker is running; try again shortly", retry_after_s=5)
        depth = self.queue_depth()
        if depth >= self._max_queue_depth:
            raise Overloaded("the job queue is full; try again shortly", retry_after_s=2,
                             details={"queueDepth": depth, "maxQueueDepth": self._max_queue_depth})


@dataclass
class Services:
    """The API's collaborators, built once per process."""

    settings: Settings
    redis: redis.Redis
    store: JobStore
    sessions: SessionStore
    registry: WorkerRegistry
    admission: Admission
    dispatcher: Dispatcher
    packages: PackagePolicy
    analyzer: CodeAnalyzer
    tenants: Tenants
    audit: AuditTrail
    started_at: float
    fair_queue: FairQueue
    session_setups: SessionSetups
    transfers: FileTransfers

    @classmethod
    def build(cls, settings: Settings, *, client: Redis | None = None,
              dispatcher: Dispatcher | None = None) -> Services:
        client = client or connect(settings, health_check_interval=30, socket_connect_timeout=2)
        registry = WorkerRegistry(client, ttl_s=settings.heartbeat_ttl_seconds)
        store = JobStore.from_settings(client, settings)
        return cls(
            settings=settings,
            redis=client,
            store=store,
            sessions=SessionStore(client, store, retention_s=settings.job_retention_seconds),
            registry=registry,
            admission=Admission(client, registry, max_queue_depth=settings.max_queue_depth,
                                heartbeat_ttl_s=settings.heartbeat_ttl_seconds),
            dispatcher=dispatcher or CeleryDispatcher(settings),
            packages=PackagePolicy.load(Path(settings.policy_dir)),
            analyzer=CodeAnalyzer(ImportPolicy.load(Path(settings.policy_dir)),
                                  FilesystemPolicy.load(Path(settings.policy_dir))),
            tenants=Tenants(settings),
            audit=AuditTrail(client),
            started_at=time.time(),
            fair_queue=FairQueue(client),
            session_setups=SessionSetups(client),
            transfers=FileTransfers(client, budget=settings.tenant_max_transfer_bytes),
        )
