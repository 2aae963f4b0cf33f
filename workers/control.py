"""ControlConsumer: session control (create, kick, delete) with its own consumer and threads.

The Celery worker's threads run stateless jobs, each for up to MAX_EXECUTION_TIME; a session create, kick or
delete queued behind them would wait for one to end (16 s seen for a create behind one tenant's backlog).
So the host's own queue (`penny.host.<worker>`, where the API sends a session's control tasks) is not
consumed by Celery but by this consumer: one thread reads the queue through kombu (the broker connection
Celery uses), acknowledges each message at once (early ack, as for jobs) and hands it to a small pool of
control threads that never run an execution. A session's code runs on its actor thread (workers.sessions);
a kick only wakes it. Creates (which may wait for a sandbox and install packages, for minutes) run on
their own threads (`slow` tasks), so however many creates one tenant sends, kicks and deletes of every
session on the host still run at once.

Messages are Celery's (protocol 2: the task name in the headers, [args, kwargs, embed] in the body) and
carry ids only; the session's variables and packages are read from Redis (core.session_setup). Flower does
not list these tasks (no worker events are sent for them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kombu import Connection, Consumer, Exchange, Message, Queue

from core import keys

log = logging.getLogger(__name__)

CONTROL_THREADS = 4
QUICK_THREADS = 2  # kicks and deletes: milliseconds each
DRAIN_TIMEOUT_S = 1.0
RECONNECT_DELAY_S = 1.0

Handler = Callable[[str], object]


def task_of(message: Message) -> tuple[str, list[Any]] | None:
    """(task name, positional args) of a Celery protocol 2 message; None for anything else."""
    name = (message.headers or {}).get("task")
    body = message.decode()
    if not isinstance(name, str) or not isinstance(body, list | tuple) or not body:
        return None
    args = body[0]
    return (name, list(args)) if isinstance(args, list | tuple) else None


class ControlConsumer:
    """Consumes `penny.host.<worker>` on its own thread and runs each task on the control pool."""

    def __init__(self, connect: Callable[[], Connection], worker: str, handlers: dict[str, Handler], *,
                 slow: frozenset[str] = frozenset(), threads: int = CONTROL_THREADS) -> None:
        self._connect = connect
        self._queue_name = keys.host_queue(worker)
        self._handlers = handlers
        self._slow = slow
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="session-control")
        self._quick = ThreadPoolExecutor(max_workers=QUICK_THREADS, thread_name_prefix="session-control-quick")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="control-consumer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # Same queue, exchange and routing key as Celery declares for send_task(..., queue=name).
        queue = Queue(self._queue_name, Exchange(self._queue_name, type="direct"), routing_key=self._queue_name)
        while not self._stopped.is_set():
            try:
                with self._connect() as connection, Consumer(connection, queues=[queue], accept=["json"],
                                                             callbacks=[self._on_message], prefetch_count=0):
                    while not self._stopped.is_set():
                        try:
                            connection.drain_events(timeout=DRAIN_TIMEOUT_S)
                        except TimeoutError:
                            continue
            except Exception:  # the broker went away: reconnect (the queue keeps the messages meanwhile)
                if self._stopped.is_set():
                    return
                log.exception("session control consumer lost the broker; reconnecting")
                self._stopped.wait(RECONNECT_DELAY_S)

    def _on_message(self, _body: Any, message: Message) -> None:
        message.ack()
        try:
            task = task_of(message)
        except Exception:
            log.exception("session control: undecodable message dropped")
            return
        if task is None or task[0] not in self._handlers or not task[1]:
            log.error("session control: unknown or malformed task dropped: %s", task[0] if task else None)
            return
        name, args = task
        (self._pool if name in self._slow else self._quick).submit(self._run, name, str(args[0]))

    def _run(self, name: str, session_id: str) -> None:
        try:
            self._handlers[name](session_id)
        except Exception:  # one failed control task must not stop the others
            log.exception("session %s: %s failed", session_id, name)

    def close(self, *, timeout_s: float = 5.0) -> None:
        """Stop consuming, then let the control tasks already taken finish."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
        self._pool.shutdown(wait=True, cancel_futures=False)
        self._quick.shutdown(wait=True, cancel_futures=False)
