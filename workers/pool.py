"""The warm pool: `size` started sandboxes per worker host, refilled in the background.

A job takes a ready sandbox (no container start on the request path) and gives it back afterwards. The
runtime resets a stateless sandbox after each job and says so; acquire() hands a sandbox out only once
that confirmation arrived (usually long before the next job), so no job ever starts on a sandbox whose
reset failed or is still running. A sandbox that failed, failed its reset, or ran container_max_jobs
jobs is destroyed and replaced by the refill thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import SandboxError
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

REFILL_RETRY_S = 2.0


@dataclass(frozen=True)
class PoolStats:
    """How many sandboxes are idle, busy and starting."""

    idle: int
    busy: int
    starting: int
    size: int


class SandboxPool:
    """Keeps `size` sandboxes alive; acquire() blocks until one is ready."""

    def __init__(self, start_sandbox: Callable[[str], Sandbox], *, size: int, max_jobs: int) -> None:
        self.pool_id = uuid.uuid4().hex[:12]
        self._start_sandbox = start_sandbox
        self._size = size
        self._max_jobs = max_jobs
        self._ready: queue.Queue[Sandbox] = queue.Queue()
        self._lock = threading.Lock()
        self._busy = 0
        self._starting = 0
        self._missing = threading.Semaphore(0)
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_error: str | None = None

    def start(self, *, refill_threads: int = 2) -> None:
        """Begin filling the pool in the background."""
        for _ in range(self._size):
            self._missing.release()
        for index in range(refill_threads):
            thread = threading.Thread(target=self._refill_loop, name=f"pool-refill-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def acquire(self, timeout_s: float) -> Sandbox:
        """A ready, reset sandbox, waiting up to timeout_s; raises SandboxError if none became ready."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sandbox = self._ready.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                detail = f": {self.last_error}" if self.last_error else ""
                raise SandboxError(f"no sandbox became ready within {timeout_s:.0f} s{detail}") from None
            if sandbox.confirm_reset():
                break
            self._missing.release()  # it failed its reset (and was destroyed): start a replacement
        with self._lock:
            self._busy += 1
        return sandbox

    def release(self, sandbox: Sandbox) -> None:
        """Give a sandbox back after a job; a spent or broken one is replaced."""
        with self._lock:
            self._busy -= 1
        if sandbox.healthy and sandbox.jobs_run < self._max_jobs and not self._stopped.is_set():
            self._ready.put(sandbox)
            return
        sandbox.destroy()
        self._missing.release()

    def detach(self, sandbox: Sandbox) -> Sandbox:
        """Take an acquired sandbox out of the pool for good (a session's); a replacement is started."""
        with self._lock:
            self._busy -= 1
        self._missing.release()
        return sandbox

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(idle=self._ready.qsize(), busy=self._busy, starting=self._starting,
                             size=self._size)

    def _refill_loop(self) -> None:
        while not self._stopped.is_set():
            if not self._missing.acquire(timeout=0.5):
                continue
            with self._lock:
                self._starting += 1
            try:
                sandbox = self._start_sandbox(self.pool_id)
            except Exception as exc:  # keep refilling whatever went wrong; health shows last_error
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("sandbox start failed: %s", self.last_error)
                self._missing.release()
                self._stopped.wait(REFILL_RETRY_S)
                continue
            finally:
                with self._lock:
                    self._starting -= 1
            self.last_error = None
            if self._stopped.is_set():
                sandbox.destroy()
            else:
                self._ready.put(sandbox)

    def close(self) -> None:
        """Stop refilling and destroy every idle sandbox (busy ones are destroyed on release)."""
        self._stopped.set()
        for thread in self._threads:
            thread.join(timeout=5)
        while True:
            try:
                self._ready.get_nowait().destroy()
            except queue.Empty:
                return
