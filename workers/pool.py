"""The warm pool: `size` started sandboxes per worker host, refilled in the background.

A job takes a ready sandbox (no container start on the request path) and gives it back afterwards. The
runtime resets a stateless sandbox after each job and says so; acquire() hands a sandbox out only once
that confirmation arrived (usually long before the next job), so no job ever starts on a sandbox whose
reset failed or is still running. A sandbox that failed, failed its reset, or ran container_max_jobs
jobs is destroyed and replaced by the refill thread.

A pool given a DemandTracker (the session pool) follows demand instead of holding a fixed size: every
acquire is counted, the pool tops itself up to the tracker's target at once (so a burst's later creates find
sandboxes already starting), and maintain() (the heartbeat) destroys idle sandboxes above the target once
the demand has aged out. The stateless pool keeps a fixed size: it is the worker's job concurrency.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from core.errors import SandboxError
from core.isolation import Tier
from workers.pool_demand import DemandTracker
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

REFILL_RETRY_S = 2.0
SHRINK_PER_MAINTAIN = 4  # idle sandboxes destroyed per maintain() call at most (each costs a docker rm)


def available_memory_bytes() -> int:
    return int(psutil.virtual_memory().available)


@dataclass(frozen=True)
class PoolStats:
    """How many sandboxes are idle, busy and starting."""

    idle: int
    busy: int
    starting: int
    size: int


class SandboxPool:
    """Keeps `size` sandboxes alive (or, with `demand`, as many as recent demand calls for); acquire() blocks
    until one is ready. `ceiling` (optional) bounds a demand-following pool, e.g. by the sessions the host may
    still open. `tier` is the isolation tier start_sandbox starts sandboxes of: what the results of the jobs
    run on them report."""

    def __init__(self, start_sandbox: Callable[[str], Sandbox], *, size: int, max_jobs: int,
                 tier: Tier = Tier.RUNC, demand: DemandTracker | None = None,
                 ceiling: Callable[[], int] | None = None,
                 available_memory: Callable[[], int] = available_memory_bytes,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool_id = uuid.uuid4().hex[:12]
        self.tier = tier
        self._start_sandbox = start_sandbox
        self._size = size
        self._max_jobs = max_jobs
        self._demand = demand
        self._ceiling = ceiling
        self._available_memory = available_memory
        self._clock = clock  # the demand's time (seconds); only tests pass another
        self._pending = 0  # starts asked for (released on _missing) that no refill thread took yet
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
        self._ask(self._size)
        for index in range(refill_threads):
            thread = threading.Thread(target=self._refill_loop, name=f"pool-refill-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def acquire(self, timeout_s: float) -> Sandbox:
        """A ready, reset sandbox, waiting up to timeout_s; raises SandboxError if none became ready."""
        deadline = time.monotonic() + timeout_s
        if self._demand is not None:
            with self._lock:
                self._demand.note(self._clock())
            self._top_up()
        while True:
            try:
                sandbox = self._ready.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                detail = f": {self.last_error}" if self.last_error else ""
                raise SandboxError(f"no sandbox became ready within {timeout_s:.0f} s{detail}") from None
            if sandbox.confirm_reset():
                break
            self._replace()  # it failed its reset (and was destroyed): start a replacement
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
        self._replace()

    def detach(self, sandbox: Sandbox) -> Sandbox:
        """Take an acquired sandbox out of the pool for good (a session's); a replacement is started."""
        with self._lock:
            self._busy -= 1
        self._replace()
        return sandbox

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(idle=self._ready.qsize(), busy=self._busy, starting=self._starting,
                             size=self._target() if self._demand is not None else self._size)

    def maintain(self) -> int:
        """Top a demand-following pool up to its target, or destroy idle sandboxes above it (a few per call);
        returns how many were destroyed."""
        if self._demand is None or self._stopped.is_set():
            return 0
        self._top_up()
        destroyed = 0
        while destroyed < SHRINK_PER_MAINTAIN:
            with self._lock:
                surplus = self._ready.qsize() + self._starting + self._pending - self._target()
            if surplus <= 0:
                break
            try:
                sandbox = self._ready.get_nowait()
            except queue.Empty:
                break
            sandbox.destroy()
            destroyed += 1
        return destroyed

    def _target(self) -> int:
        """The demand-following size (caller holds the lock)."""
        assert self._demand is not None
        have = self._ready.qsize() + self._starting + self._pending
        return self._demand.target(self._clock(), have=have, available_bytes=self._available_memory(),
                                   ceiling=self._ceiling() if self._ceiling else None)

    def _ask(self, count: int) -> None:
        with self._lock:
            self._pending += count
        for _ in range(count):
            self._missing.release()

    def _replace(self) -> None:
        """A sandbox left the pool: a fixed pool starts a replacement, a demand-following one tops up."""
        if self._demand is None:
            self._ask(1)
        else:
            self._top_up()

    def _top_up(self) -> None:
        with self._lock:
            missing = self._target() - (self._ready.qsize() + self._starting + self._pending)
            if missing <= 0 or self._stopped.is_set():
                return
            self._pending += missing
        for _ in range(missing):
            self._missing.release()

    def _refill_loop(self) -> None:
        while not self._stopped.is_set():
            if not self._missing.acquire(timeout=0.5):
                continue
            with self._lock:
                self._pending -= 1
                self._starting += 1
            try:
                sandbox = self._start_sandbox(self.pool_id)
            except Exception as exc:  # keep refilling whatever went wrong; health shows last_error
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("sandbox start failed: %s", self.last_error)
                self._ask(1)
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
