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

Every job pushed comes with one doorbell, and a doorbell takes at most one job: pop_claim removes it from
its list and claims it for the worker (queued -> running, core.jobs.CLAIM_LUA) in one script, so a worker
that dies at any moment leaves a job either queued in its list or running (which the reaper ends). An entry
whose job was cancelled or expired meanwhile is dropped by the doorbell that meets it, which takes the next
one. A doorbell lost with its worker (acknowledged early, then killed before it popped) or never sent (the
API stopped between push and send) is made up by the queue sweep (core.queue_sweep).
"""

from __future__ import annotations

from typing import Any

import redis

from core import keys
from core.jobs import CLAIM_LUA, Claimant, ClaimedJob

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

# serve(take, ring, passes, clock, prefix): serves the tenant with the lowest pass: pops its oldest entry and
# asks take(entry) for what to return. A taken entry advances the tenant's pass and the clock; an entry
# take() refuses (its job was cancelled, finished, expired or withdrawn meanwhile) is dropped without costing
# the tenant its turn, and the next entry is tried. A tenant whose list is now empty leaves the ring (its pass
# is kept). Returns what take() returned, or false when nothing takable is queued.
_SERVE = """
local function serve(take, ring, passes, clock, prefix)
  for _ = 1, 1000 do
    local top = redis.call('ZRANGE', ring, 0, 0, 'WITHSCORES')
    if #top == 0 then return false end
    local tenant, pass = top[1], tonumber(top[2])
    local list = prefix .. tenant
    local entry = redis.call('LPOP', list)
    local taken = entry and take(entry)
    local next_pass = pass
    if taken then
      next_pass = pass + 1
      redis.call('SET', clock, pass)
    end
    if redis.call('LLEN', list) == 0 then
      redis.call('ZREM', ring, tenant)
      redis.call('HSET', passes, tenant, next_pass)
    elseif taken then
      redis.call('ZADD', ring, next_pass, tenant)
    end
    if taken then return taken end
  end
  return false
end
"""

# KEYS: ring, passes, clock. ARGV: tenant list prefix. Returns the job id served, or false when nothing is
# queued (entries are not checked: what the queue alone decides).
_POP = _SERVE + """
return serve(function(entry) return entry end, KEYS[1], KEYS[2], KEYS[3], ARGV[1])
"""

# KEYS: claim keys, ring, passes, clock. ARGV: claimant, tenant list prefix. Serves the next tenant and claims
# its job for the claimant in the same step. Returns {job_id, request_json, created_ms}, or false.
_POP_CLAIM = CLAIM_LUA + _SERVE + """
local k, a = CLAIM_KEYS, CLAIM_ARGS
return serve(function(entry)
  local claimed = claim(entry)
  return claimed and {entry, claimed[1], claimed[2]}
end, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], ARGV[a + 1])
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FairQueue:
    """Per-tenant job lists served in turn; each method is one Redis script call."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._push = client.register_script(_PUSH)
        self._pop = client.register_script(_POP)
        self._pop_claim = client.register_script(_POP_CLAIM)

    def push(self, tenant: str, job_id: str) -> None:
        """Queue job_id at the end of tenant's list (the tenant joins the ring if it had nothing queued)."""
        self._push(keys=[keys.FAIR_RING, keys.FAIR_PASSES, keys.FAIR_CLOCK, keys.fair_tenant_key(tenant)],
                   args=[tenant, job_id])

    def pop(self) -> str | None:
        """The oldest entry of the tenant whose turn it is, removed, whatever its job's state (the schedule
        alone; workers use pop_claim); None when nothing is queued."""
        raw = self._pop(keys=[keys.FAIR_RING, keys.FAIR_PASSES, keys.FAIR_CLOCK], args=[keys.FAIR_TENANT_PREFIX])
        return _text(raw) if raw else None

    def pop_claim(self, claimant: Claimant) -> ClaimedJob | None:
        """The oldest queued job of the tenant whose turn it is, removed from its list and claimed for
        claimant (now running) in one step; entries of jobs no longer queued are dropped on the way. None
        when no queued job is waiting."""
        return claimant.claimed(self._pop_claim(
            keys=[*claimant.script_keys(), keys.FAIR_RING, keys.FAIR_PASSES, keys.FAIR_CLOCK],
            args=[*claimant.script_args(), keys.FAIR_TENANT_PREFIX]))

    def depth(self, tenant: str) -> int:
        """How many job ids tenant has waiting (cancelled ones not yet skipped included)."""
        return int(self._redis.llen(keys.fair_tenant_key(tenant)))  # type: ignore[arg-type]
