"""FairQueue: tenants take turns, one job each, whatever their backlog."""

from __future__ import annotations

import fakeredis

from core.fair_queue import FairQueue


def test_a_tenant_with_one_job_is_served_before_anothers_backlog() -> None:
    queue = FairQueue(fakeredis.FakeRedis())
    for n in range(60):
        queue.push("acme", f"acme-{n}")
    queue.pop()  # acme's first job runs
    queue.push("beta", "beta-0")
    assert queue.pop() == "beta-0"  # next, ahead of acme's 59 others


def test_tenants_take_turns_and_each_keeps_its_order() -> None:
    queue = FairQueue(fakeredis.FakeRedis())
    for n in range(3):
        queue.push("acme", f"a{n}")
        queue.push("beta", f"b{n}")
    served = [queue.pop() for _ in range(6)]
    assert queue.pop() is None
    assert [job for job in served if job and job.startswith("a")] == ["a0", "a1", "a2"]
    assert [job for job in served if job and job.startswith("b")] == ["b0", "b1", "b2"]
    # Strict alternation: never two jobs of one tenant while the other has one waiting.
    assert all(served[i][0] != served[i + 1][0] for i in range(5))  # type: ignore[index]


def test_a_tenant_that_keeps_rejoining_cannot_starve_another() -> None:
    queue = FairQueue(fakeredis.FakeRedis())
    for n in range(10):
        queue.push("acme", f"a{n}")
    served = []
    for n in range(10):
        queue.push("beta", f"b{n}")  # beta always has exactly one job waiting when a worker asks
        served.append(queue.pop())
    assert sum(1 for job in served if job and job.startswith("a")) == 5  # every other turn


def test_an_empty_queue_pops_nothing_and_forgets_finished_tenants() -> None:
    client = fakeredis.FakeRedis()
    queue = FairQueue(client)
    assert queue.pop() is None
    queue.push("acme", "a0")
    assert queue.pop() == "a0" and queue.pop() is None
    assert queue.depth("acme") == 0 and client.zcard("penny:fair:ring") == 0
