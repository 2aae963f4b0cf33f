"""FairQueue: stateless jobs wait in one list per tenant, and workers serve the tenants in turn.

The broker's queue holds only doorbells (one `penny.execute` message per accepted job, no arguments); the
worker that runs a doorbell asks this queue which job comes next at that moment. So the order is decided
when a Celery thread is free, not when a message was published or prefetched: a tenant with 60 jobs
waiting and a tenant with one take turns, one job each, and the second tenant's job starts at the next
free thread, i.e. within about one job's length of the longest-running job it waits behind.

Every job pushed comes with one doorbell and every doorbell pops at least one entry, so no queued job is
left without a doorbell. An entry whose job was cancelled or expired meanwhile is skipped (its claim
fails) and the doorbell pops the next one.
"""

from __future__ import annotations

from typing import Any

import redis

from core import keys

# KEYS: ring, the tenant's list. ARGV: tenant, job_id. A tenant that had nothing queued joins the ring at the
# end of the current round (the ring is served from its tail; LPUSH puts it at the head, served last).
_PUSH = """
if redis.call('RPUSH', KEYS[2], ARGV[2]) == 1 then
  redis.call('LREM', KEYS[1], 0, ARGV[1])
  redis.call('LPUSH', KEYS[1], ARGV[1])
end
return 1
"""

# KEYS: ring. ARGV: tenant list prefix. Takes the tenant whose turn it is (rotating the ring), pops its oldest
# job; a tenant whose list is now empty leaves the ring. Returns the job id, or false when nothing is queued.
_POP = """
for _ = 1, 1000 do
  local tenant = redis.call('RPOPLPUSH', KEYS[1], KEYS[1])
  if not tenant then return false end
  local list = ARGV[1] .. tenant
  local job = redis.call('LPOP', list)
  if redis.call('LLEN', list) == 0 then redis.call('LREM', KEYS[1], 1, tenant) end
  if job then return job end
end
return false
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FairQueue:
    """Per-tenant job lists served round-robin; each method is one Redis script call."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._push = client.register_script(_PUSH)
        self._pop = client.register_script(_POP)

    def push(self, tenant: str, job_id: str) -> None:
        """Queue job_id at the end of tenant's list (the tenant joins the ring if it had nothing queued)."""
        self._push(keys=[keys.FAIR_RING, keys.fair_tenant_key(tenant)], args=[tenant, job_id])

    def pop(self) -> str | None:
        """The oldest queued job of the tenant whose turn it is, removed; None when nothing is queued."""
        raw = self._pop(keys=[keys.FAIR_RING], args=[keys.FAIR_TENANT_PREFIX])
        return _text(raw) if raw else None

    def depth(self, tenant: str) -> int:
        """How many job ids tenant has waiting (cancelled ones not yet skipped included)."""
        return int(self._redis.llen(keys.fair_tenant_key(tenant)))  # type: ignore[arg-type]
