"""FairQueue: stateless jobs wait in one list per tenant, and workers serve the tenants in turn.

The broker's queue holds only doorbells (one `penny.execute` message per accepted job, no arguments); the
worker that runs a doorbell asks this queue which job comes next at that moment. So the order is decided
when a Celery thread is free, not when a message was published or prefetched: a tenant with 60 jobs
waiting and a tenant with one take turns, and the second tenant's job starts at the next free thread,
i.e. within about one job's length of the jobs it waits behind.

Turns are counted in virtual time (stride scheduling with equal weights): each tenant has a pass, the number
of its jobs served; the tenant with the lowest pass goes next (ties by name). A tenant that had nothing
queued comes back with the pass last served (never less than its own), so it goes next but cannot gain
turns by leaving and coming back: a tenant that always has exactly one job waiting gets every other turn,
not every turn.

Every job pushed comes with one doorbell and every doorbell pops at least one entry, so no queued job is
left without a doorbell. An entry whose job was cancelled or expired meanwhile is skipped (its claim
fails) and the doorbell pops the next one.
"""

from __future__ import annotations

from typing import Any

import redis

from core import keys

# KEYS: ring, passes, clock, the tenant's list. ARGV: tenant, job_id. A tenant that had nothing queued joins
# the ring with max(its own pass, the clock).
_PUSH = """
redis.call('RPUSH', KEYS[4], ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local own = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  local clock = tonumber(redis.call('GET', KEYS[3]) or '0')
  redis.call('ZADD', KEYS[1], math.max(own, clock), ARGV[1])
end
return 1
"""

# KEYS: ring, passes, clock. ARGV: tenant list prefix. Serves the tenant with the lowest pass: pops its oldest
# job, advances its pass and the clock; a tenant whose list is now empty leaves the ring (its pass is kept).
# Returns the job id, or false when nothing is queued.
_POP = """
for _ = 1, 1000 do
  local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #top == 0 then return false end
  local tenant, pass = top[1], tonumber(top[2])
  local list = ARGV[1] .. tenant
  local job = redis.call('LPOP', list)
  redis.call('SET', KEYS[3], pass)
  if redis.call('LLEN', list) == 0 then
    redis.call('ZREM', KEYS[1], tenant)
    redis.call('HSET', KEYS[2], tenant, pass + 1)
  else
    redis.call('ZADD', KEYS[1], pass + 1, tenant)
  end
  if job then return job end
end
return false
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FairQueue:
    """Per-tenant job lists served in turn; each method is one Redis script call."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._push = client.register_script(_PUSH)
        self._pop = client.register_script(_POP)

    def push(self, tenant: str, job_id: str) -> None:
        """Queue job_id at the end of tenant's list (the tenant joins the ring if it had nothing queued)."""
        self._push(keys=[keys.FAIR_RING, keys.FAIR_PASSES, keys.FAIR_CLOCK, keys.fair_tenant_key(tenant)],
                   args=[tenant, job_id])

    def pop(self) -> str | None:
        """The oldest queued job of the tenant whose turn it is, removed; None when nothing is queued."""
        raw = self._pop(keys=[keys.FAIR_RING, keys.FAIR_PASSES, keys.FAIR_CLOCK], args=[keys.FAIR_TENANT_PREFIX])
        return _text(raw) if raw else None

    def depth(self, tenant: str) -> int:
        """How many job ids tenant has waiting (cancelled ones not yet skipped included)."""
        return int(self._redis.llen(keys.fair_tenant_key(tenant)))  # type: ignore[arg-type]
