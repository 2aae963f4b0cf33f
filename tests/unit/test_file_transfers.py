"""FileTransfers: session file bytes in Redis, counted against each tenant's budget (fakeredis, Lua)."""

from __future__ import annotations

import fakeredis
import pytest

from core import keys
from core.errors import ConfigError
from core.ledger import MIN_CHARGE_BYTES
from core.session_files import FileTransfers, TransferBudgetExceeded
from core.settings import Settings

BUDGET = 10_000


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def used(client: fakeredis.FakeRedis, tenant: str) -> int:
    return int(client.get(keys.tenant_transfers_keys(tenant)[2]) or 0)


def test_a_transfer_is_taken_once_and_its_bytes_are_released(client: fakeredis.FakeRedis) -> None:
    transfers = FileTransfers(client, budget=BUDGET)
    transfer = transfers.put("acme", b"x" * 4000)
    assert used(client, "acme") == 4000
    assert transfers.take("acme", transfer) == b"x" * 4000
    assert transfers.take("acme", transfer) is None
    assert used(client, "acme") == 0


def test_past_the_budget_nothing_is_stored_and_other_tenants_are_unaffected(client: fakeredis.FakeRedis) -> None:
    transfers = FileTransfers(client, budget=BUDGET)
    kept = transfers.put("acme", b"a" * 6000)
    stored_before = set(client.scan_iter(keys.file_transfer_key("*")))
    with pytest.raises(TransferBudgetExceeded) as refused:
        transfers.put("acme", b"b" * 6000)
    assert refused.value.used == 6000 and refused.value.budget == BUDGET
    assert set(client.scan_iter(keys.file_transfer_key("*"))) == stored_before
    transfers.put("beta", b"c" * 6000)  # its own budget
    transfers.discard("acme", kept)
    transfers.put("acme", b"b" * 6000)


def test_empty_transfers_are_charged_so_their_number_is_bounded(client: fakeredis.FakeRedis) -> None:
    transfers = FileTransfers(client, budget=BUDGET)
    for _ in range(BUDGET // MIN_CHARGE_BYTES):
        transfers.put("acme", b"")
    with pytest.raises(TransferBudgetExceeded):
        transfers.put("acme", b"")


def test_expired_transfers_give_their_bytes_back(client: fakeredis.FakeRedis,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    transfers = FileTransfers(client, budget=BUDGET)
    clock = [1_000_000.0]
    monkeypatch.setattr("core.ledger.time.time", lambda: clock[0])
    abandoned = transfers.put("acme", b"a" * 9000)  # a download the API never sent on
    with pytest.raises(TransferBudgetExceeded):
        transfers.put("acme", b"b" * 2000)
    clock[0] += 301  # past TRANSFER_TTL_S: its key is gone in Redis, and its entry is dropped on the next put
    client.delete(keys.file_transfer_key(abandoned))  # what Redis's own expiry did
    transfers.put("acme", b"b" * 2000)
    assert used(client, "acme") == 2000
    assert transfers.take("acme", abandoned) is None
    assert used(client, "acme") == 2000


def test_the_budget_must_hold_one_file() -> None:
    with pytest.raises(ConfigError, match="TENANT_MAX_TRANSFER_BYTES"):
        Settings.from_env({"TENANT_MAX_TRANSFER_BYTES": str(2 * 1024 * 1024), "MAX_FILE_SIZE_BYTES": str(4 << 20)})
    assert Settings.from_env({}).tenant_max_transfer_bytes >= Settings.from_env({}).max_file_size_bytes
