"""Session control: creates that take minutes never hold up another session's kick or delete."""

from __future__ import annotations

import threading
from typing import Any

from core import keys
from workers.control import CONTROL_THREADS, ControlConsumer


class FakeMessage:
    def __init__(self, task: str, session_id: str) -> None:
        self.headers = {"task": task}
        self._body = [[session_id], {}, {}]

    def decode(self) -> Any:
        return self._body

    def ack(self) -> None:
        pass


def test_kicks_and_deletes_run_while_every_create_thread_is_busy() -> None:
    release = threading.Event()
    started = threading.Semaphore(0)
    kicked = threading.Event()

    def slow_create(_session_id: str) -> None:
        started.release()
        release.wait(10)

    consumer = ControlConsumer(lambda: None, "w1", {  # type: ignore[arg-type,return-value]
        keys.SESSION_CREATE_TASK: slow_create,
        keys.SESSION_KICK_TASK: lambda _sid: kicked.set(),
        keys.SESSION_DELETE_TASK: lambda _sid: None,
    }, slow=frozenset({keys.SESSION_CREATE_TASK}))
    try:
        for index in range(CONTROL_THREADS * 2):  # one tenant's creates, more than there are threads
            consumer._on_message(None, FakeMessage(keys.SESSION_CREATE_TASK, f"s{index}"))  # type: ignore[arg-type]
        for _ in range(CONTROL_THREADS):
            assert started.acquire(timeout=10)
        consumer._on_message(None, FakeMessage(keys.SESSION_KICK_TASK, "other"))  # type: ignore[arg-type]
        assert kicked.wait(10), "a kick waited behind the creates"
    finally:
        release.set()
        consumer.close(timeout_s=1)
