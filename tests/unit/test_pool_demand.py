"""The session pool follows demand: grows to a burst, within memory and ceilings, shrinks when it ages out."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from workers.pool import SandboxPool
from workers.pool_demand import MEMORY_RESERVE_BYTES, PER_SANDBOX_BYTES, DemandTracker

PLENTY = 64 * 2**30


def test_the_target_is_the_busiest_slot_of_the_window_within_floor_and_ceiling() -> None:
    tracker = DemandTracker(minimum=2, maximum=24)
    assert tracker.target(0.0, have=2, available_bytes=PLENTY) == 2
    for _ in range(20):
        tracker.note(100.0)
    assert tracker.target(101.0, have=2, available_bytes=PLENTY) == 20
    assert tracker.target(101.0, have=2, available_bytes=PLENTY, ceiling=7) == 7
    tracker.note(150.0)
    assert tracker.target(219.0, have=20, available_bytes=PLENTY) == 20  # the burst is still in the window
    assert tracker.target(230.0, have=20, available_bytes=PLENTY) == 2  # aged out: back to the floor
    for _ in range(50):
        tracker.note(300.0)
    assert tracker.target(300.0, have=2, available_bytes=PLENTY) == 24


def test_growth_is_bounded_by_the_memory_the_host_has_left() -> None:
    tracker = DemandTracker(minimum=2, maximum=24)
    for _ in range(20):
        tracker.note(0.0)
    three_more = MEMORY_RESERVE_BYTES + 3 * PER_SANDBOX_BYTES
    assert tracker.target(0.0, have=4, available_bytes=three_more) == 7
    assert tracker.target(0.0, have=0, available_bytes=0) == 2  # the floor holds whatever the memory
    assert tracker.target(0.0, have=10, available_bytes=0) == 10  # what is there is not shed for memory


class FakeSandbox:
    healthy = True
    jobs_run = 0

    def __init__(self, started: list[FakeSandbox]) -> None:
        self.destroyed = False
        started.append(self)

    def confirm_reset(self) -> bool:
        return True

    def destroy(self) -> None:
        self.destroyed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def demand_pool() -> Iterator[tuple[SandboxPool, list[FakeSandbox], Clock]]:
    started: list[FakeSandbox] = []
    clock = Clock()
    pool = SandboxPool(lambda _pool_id: FakeSandbox(started), size=2, max_jobs=10,  # type: ignore[arg-type,return-value]
                       demand=DemandTracker(minimum=2, maximum=12), available_memory=lambda: PLENTY, clock=clock)
    pool.start(refill_threads=2)
    yield pool, started, clock
    pool.close()


def wait_for(predicate: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def live(started: list[FakeSandbox]) -> int:
    return sum(1 for sandbox in started if not sandbox.destroyed)


def test_a_burst_is_served_and_leaves_the_pool_warm_for_the_next_one_until_it_ages_out(
        demand_pool: tuple[SandboxPool, list[FakeSandbox], Clock]) -> None:
    pool, started, clock = demand_pool
    wait_for(lambda: pool.stats().idle == 2, "the floor of 2 is started")
    taken: list[Any] = []
    gate = threading.Barrier(9)

    def create() -> None:
        gate.wait()
        taken.append(pool.detach(pool.acquire(10)))

    threads = [threading.Thread(target=create) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 9 and len({id(s) for s in taken}) == 9
    # The burst of 9 is remembered: 9 warm sandboxes wait for the next one, none more.
    wait_for(lambda: pool.stats().idle == 9, "the pool grows to the burst")
    assert pool.stats().size == 9 and live(started) == 18
    assert pool.maintain() == 0
    clock.now += 121  # the burst ages out of the window: the pool shrinks to its floor, a few per beat
    destroyed = 0
    while pool.stats().idle > 2:
        step = pool.maintain()
        assert 0 < step <= 4
        destroyed += step
    assert destroyed == 7 and pool.stats().idle == 2 and live(started) == 9 + 2


def test_a_fixed_pool_keeps_its_size_whatever_the_demand() -> None:
    started: list[FakeSandbox] = []
    pool = SandboxPool(lambda _pool_id: FakeSandbox(started), size=2, max_jobs=10)  # type: ignore[arg-type,return-value]
    pool.start(refill_threads=1)
    try:
        wait_for(lambda: pool.stats().idle == 2, "started")
        sandboxes = [pool.acquire(5) for _ in range(2)]
        for sandbox in sandboxes:
            pool.release(sandbox)
        assert pool.maintain() == 0
        assert pool.stats().idle == 2 and len(started) == 2
    finally:
        pool.close()
