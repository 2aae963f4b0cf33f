"""ByteLedger and the stored-bytes budget of jobs (fakeredis, Lua)."""

from __future__ import annotations

import fakeredis
import pytest

from core import keys
from core.jobs import JobStore
from core.ledger import MIN_CHARGE_BYTES, ByteLedger, OverBudget
from core.models import ExecutionRequest, ExecutionResult, JobStatus

BUDGET = 100_000


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def ledger(client: fakeredis.FakeRedis, budget: int = BUDGET) -> ByteLedger:
    return ByteLedger(client, keys.tenant_stored_keys, budget=budget, ttl_s=60)


def test_a_refused_charge_charges_nothing_and_says_when_to_retry(client: fakeredis.FakeRedis) -> None:
    bytes_ = ledger(client)
    bytes_.charge("acme", "one", 80_000)
    with pytest.raises(OverBudget) as refused:
        bytes_.charge("acme", "two", 30_000)
    assert refused.value.used == 80_000 and 1 <= refused.value.retry_after_s <= 60
    assert bytes_.used("acme") == 80_000
    bytes_.charge("acme", "three", 20_000)  # exactly the budget
    assert bytes_.used("acme") == BUDGET


def test_a_forced_charge_is_recorded_past_the_budget_and_charging_an_entry_again_replaces_it(
        client: fakeredis.FakeRedis) -> None:
    bytes_ = ledger(client)
    bytes_.charge("acme", "out", 150_000, forced=True)
    bytes_.charge("acme", "out", 120_000, forced=True)
    assert bytes_.used("acme") == 120_000
    with pytest.raises(OverBudget):
        bytes_.charge("acme", "next", 1)
    assert bytes_.release("acme", "out") is None
    assert bytes_.used("acme") == 0
    bytes_.charge("acme", "next", 1)
    assert bytes_.used("acme") == MIN_CHARGE_BYTES


def test_the_ledger_keys_expire_with_their_last_entry(client: fakeredis.FakeRedis) -> None:
    ledger(client).charge("acme", "one", 10)
    assert all(0 < client.pttl(key) <= 60_000 for key in keys.tenant_stored_keys("acme"))


def test_jobs_over_the_stored_budget_are_refused_before_anything_is_stored(client: fakeredis.FakeRedis) -> None:
    store = JobStore(client, retention_s=60, stored=ledger(client, budget=20_000))
    request = ExecutionRequest(code="print(1)", timeout_ms=1000, tenant="acme")
    assert store.create("a" * 32, request) is not None
    store.finish(ExecutionResult(job_id="a" * 32, status=JobStatus.SUCCESS, stdout="x" * 9_000), tenant="acme")
    assert ledger(client).used("acme") > 18_000  # the result, and the stdout events it repeats
    with pytest.raises(OverBudget):
        store.create("b" * 32, request)
    assert store.get("b" * 32) is None and not client.exists(keys.job_events_key("b" * 32))
    assert store.create("c" * 32, ExecutionRequest(code="1", timeout_ms=1000, tenant="beta")) is not None


def test_a_job_refused_by_its_quota_gives_its_charge_back(client: fakeredis.FakeRedis) -> None:
    bytes_ = ledger(client)
    store = JobStore(client, retention_s=60, stored=bytes_)
    request = ExecutionRequest(code="1", timeout_ms=1000, tenant="acme")
    assert store.create("a" * 32, request, max_active=1) is not None
    held = bytes_.used("acme")
    assert store.create("b" * 32, request, max_active=1) is None
    assert bytes_.used("acme") == held
