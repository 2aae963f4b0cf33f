"""The Celery app of a worker host, built from Settings (no module-level configuration)."""

from __future__ import annotations

from typing import Any

from celery import Celery, signals
from celery.worker.request import Request

from core import keys
from core.redis_client import RedisEndpoint
from core.settings import Settings
from workers.control import ControlConsumer
from workers.host import WorkerHost


class DoorbellRequest(Request):  # type: ignore[misc]  # Celery ships no type hints
    """Celery's request object of the execute doorbell: one task event per job instead of three.

    The task is declared with send_events=False, so Celery sends neither task-received nor task-started
    for it; this sends the outcome (task-succeeded with the job it ran as its result, or task-failed)
    itself, with the task's name, which is all Flower needs to list the task under its worker.
    """

    def send_event(self, type: str, **fields: Any) -> None:  # noqa: A002 (Celery's name)
        if type in ("task-received", "task-started") or not (self._eventer and self._eventer.enabled):
            return
        self._eventer.send(type, uuid=self.id, name=self.name, **fields)


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
        # within heartbeat_ttl_seconds, and the client decides whether to resubmit. A doorbell acknowledged
        # or prefetched by a worker that dies before its pop is rung again by the queue sweep
        # (core.queue_sweep): the job it was for still waits in its list.
        task_acks_late=False,
        task_reject_on_worker_lost=False,
        # Prefetch 1: a busy worker does not hoard jobs another worker host could start now.
        worker_prefetch_multiplier=1,
        # Task events for Flower: it lists the workers (their heartbeats) and each doorbell task, by name,
        # with its result, the job it ran, from a single event per job (DoorbellRequest): every event is a
        # publish by the worker and a message Flower decodes (docs/performance.md).
        worker_send_task_events=True,
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
    )
    holder: dict[str, Any] = {}

    @app.task(name=keys.EXECUTE_TASK, ignore_result=True, send_events=False,
              Request=DoorbellRequest)
    def execute() -> str | None:
        """Run the next stateless job of the fair queue: a doorbell, not a particular job (core.fair_queue).
        Returns "<job id> <status>", which Flower shows as the task's result (its arguments are empty)."""
        host: WorkerHost = holder["host"]
        # Popped and claimed in one step: killed at any moment, this worker leaves the job queued in its list
        # or running (the reaper ends it). Entries of cancelled jobs are dropped on the way.
        job = host.fair_queue.pop_claim(host.runner.claimant)
        if job is None:
            return None  # nothing waits: a doorbell the queue sweep rang in excess, or whose job was cancelled
        return f"{job.job_id} {host.runner.run_claimed(job).status.value}"

    def on_worker_init(**_: Any) -> None:
        host = WorkerHost(settings, ring=lambda: app.send_task(keys.EXECUTE_TASK, args=[], queue=keys.SHARED_QUEUE))
        host.start()
        holder["host"] = host
        control = ControlConsumer(app.connection_for_read, settings.worker_name, {
            keys.SESSION_CREATE_TASK: host.create_session,
            keys.SESSION_KICK_TASK: host.session_manager.kick,
            keys.SESSION_DELETE_TASK: host.session_manager.delete,
        }, slow=frozenset({keys.SESSION_CREATE_TASK}))
        control.start()
        holder["control"] = control

    def on_worker_shutdown(**_: Any) -> None:
        control = holder.pop("control", None)
        if control is not None:
            control.close()
        host = holder.pop("host", None)
        if host is not None:
            host.close()

    signals.worker_init.connect(on_worker_init, weak=False)
    signals.worker_shutdown.connect(on_worker_shutdown, weak=False)
    return app
