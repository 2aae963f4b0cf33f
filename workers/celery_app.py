"""The Celery app of a worker host, built from Settings (no module-level configuration)."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from core import keys
from core.redis_client import RedisEndpoint
from core.settings import Settings
from workers.host import WorkerHost


def broker_app(name: str, settings: Settings) -> Celery:
    """A Celery app connected to REDIS_URL with its credentials and TLS (the workers' and Flower's)."""
    app = Celery(name, set_as_current=False)
    app.conf.update(RedisEndpoint.from_settings(settings).celery_conf(), broker_connection_retry_on_startup=True)
    return app


def create_celery(settings: Settings) -> Celery:
    """A Celery app whose worker runs jobs through a WorkerHost created when the worker starts."""
    app = broker_app("penny", settings)
    app.conf.update(
        task_default_queue=keys.SHARED_QUEUE,
        # Results live in our JobStore (Redis Streams + job hash), not in a Celery result backend.
        task_ignore_result=True,
        # Early ack, deliberately: with the Redis transport an unacked message comes back only after
        # visibility_timeout, which must exceed the longest queue wait plus run, so redelivery after a
        # worker death would take minutes. Instead the heartbeat reaper ends such a job `worker_lost`
        # within heartbeat_ttl_seconds, and the client decides whether to resubmit.
        task_acks_late=False,
        task_reject_on_worker_lost=False,
        # Prefetch 1: a busy worker does not hoard jobs another worker host could start now.
        worker_prefetch_multiplier=1,
        # Task events for Flower.
        worker_send_task_events=True,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
    )
    holder: dict[str, WorkerHost] = {}

    @app.task(name=keys.EXECUTE_TASK, ignore_result=True)
    def execute(job_id: str) -> str | None:
        """Run the stateless job `job_id` (everything else is in its record)."""
        result = holder["host"].runner.run(job_id)
        return result.status.value if result else None

    @app.task(name=keys.SESSION_CREATE_TASK, ignore_result=True)
    def create_session(session_id: str, variables: dict[str, Any], packages: list[str] | None = None) -> None:
        """Dedicate a warm sandbox of this host to the new session `session_id`."""
        holder["host"].session_manager.create(session_id, variables, packages)

    @app.task(name=keys.SESSION_KICK_TASK, ignore_result=True)
    def kick_session(session_id: str) -> None:
        """Wake session_id's actor: it runs the session's pending jobs in order (never blocks here)."""
        holder["host"].session_manager.kick(session_id)

    @app.task(name=keys.SESSION_DELETE_TASK, ignore_result=True)
    def delete_session(session_id: str) -> None:
        """Destroy the deleted session's sandbox."""
        holder["host"].session_manager.delete(session_id)

    def on_worker_init(**_: Any) -> None:
        host = WorkerHost(settings)
        host.start()
        holder["host"] = host

    def on_worker_shutdown(**_: Any) -> None:
        host = holder.pop("host", None)
        if host is not None:
            host.close()

    signals.worker_init.connect(on_worker_init, weak=False)
    signals.worker_shutdown.connect(on_worker_shutdown, weak=False)
    return app
