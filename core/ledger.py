"""ByteLedger: the bytes a tenant holds in Redis, entry by entry, each until it expires.

Two kinds of tenant data live in Redis for a while and could fill it for everyone: session file transfers
(core.session_files, minutes) and jobs' requests, events and results (JOB_RETENTION_SECONDS). Each entry is
charged to its tenant's ledger with its expiry: a sorted set of entry ids by expiry (ms), a hash of their
sizes, and the sizes' total. Every charge first drops the entries that expired (their data expired with them)
and then refuses, atomically, a charge that would pass the budget; a forced charge (bytes already written,
such as a finished job's output) is always recorded and only makes the next refused charge come sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import redis

# KEYS: expiry zset, sizes hash, total[, a data key to SET]. ARGV: entry id, size, now ms, ttl ms, budget
# (-1: forced)[, data]. Returns -1 when charged, else the bytes the tenant holds. At most 1,000 expired entries
# are dropped per call (the rest on the next ones): one charge never holds Redis for long.
_CHARGE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  local size = redis.call('HGET', KEYS[2], id)
  if size then redis.call('DECRBY', KEYS[3], size) end
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
end
local used = tonumber(redis.call('GET', KEYS[3]) or '0')
local size = tonumber(ARGV[2])
local budget = tonumber(ARGV[5])
if budget >= 0 and used + size > budget then return used end
local ttl = tonumber(ARGV[4])
if KEYS[4] then redis.call('SET', KEYS[4], ARGV[6], 'PX', ttl) end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('DECRBY', KEYS[3], old) end
redis.call('ZADD', KEYS[1], tonumber(ARGV[3]) + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], size)
redis.call('INCRBY', KEYS[3], size)
local longest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
for i = 1, 3 do redis.call('PEXPIREAT', KEYS[i], longest[2]) end
return -1
"""

# KEYS: expiry zset, sizes hash, total[, a data key to GETDEL]. ARGV: entry id. Releases the entry; returns the
# data key's value (false when it expired or was taken), or false without one.
_RELEASE = """
local data = false
if KEYS[4] then
  data = redis.call('GET', KEYS[4])
  redis.call('DEL', KEYS[4])
end
local size = redis.call('HGET', KEYS[2], ARGV[1])
if size then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DECRBY', KEYS[3], size)
end
return data
"""

# Each entry is charged at least this much (Redis's own overhead per key): a tenant cannot hold an unbounded
# number of empty ones.
MIN_CHARGE_BYTES = 1024


class OverBudget(Exception):
    """A charge that would pass the tenant's budget; nothing was charged or stored."""

    def __init__(self, used: int, size: int, budget: int, retry_after_s: int) -> None:
        super().__init__(f"the tenant holds {used} bytes; {size} more would pass its limit of {budget}")
        self.used = used
        self.size = size
        self.budget = budget
        self.retry_after_s = retry_after_s  # until the oldest entry expires


class ByteLedger:
    """One kind of per-tenant data in Redis, counted against `budget` bytes per tenant."""

    def __init__(self, client: redis.Redis, keys_of: Callable[[str], tuple[str, str, str]], *, budget: int,
                 ttl_s: int) -> None:
        self._redis = client
        self._keys_of = keys_of
        self._budget = budget
        self._ttl_ms = ttl_s * 1000
        self._charge = client.register_script(_CHARGE)
        self._release = client.register_script(_RELEASE)

    @property
    def budget(self) -> int:
        return self._budget

    def charge(self, tenant: str, entry: str, size: int, *, data_key: str | None = None, data: bytes = b"",
               forced: bool = False, client: redis.client.Pipeline | None = None) -> None:
        """Charge size bytes (at least MIN_CHARGE_BYTES) to tenant under entry until ttl_s from now, and SET
        data_key to data with that expiry if given. Raises OverBudget (nothing charged or stored) unless forced;
        a forced charge may be queued on a pipeline (`client`), whose result is then not checked here."""
        charge = max(size, MIN_CHARGE_BYTES)
        keys = [*self._keys_of(tenant), *([data_key] if data_key else [])]
        args: list[bytes | int | str] = [entry, charge, int(time.time() * 1000), self._ttl_ms,
                                         -1 if forced else self._budget, *([data] if data_key else [])]
        if client is not None:
            assert forced, "a pipelined charge cannot be refused"
            self._charge(keys=keys, args=args, client=client)
            return
        used = int(self._charge(keys=keys, args=args))
        if used >= 0:
            raise OverBudget(used, charge, self._budget, self._retry_after_s(tenant))

    def release(self, tenant: str, entry: str, *, data_key: str | None = None) -> bytes | None:
        """Release entry (its bytes are no longer held); with data_key, take (GET and DEL) its value."""
        keys = [*self._keys_of(tenant), *([data_key] if data_key else [])]
        value = self._release(keys=keys, args=[entry])
        return bytes(value) if value else (b"" if value == b"" else None)

    def used(self, tenant: str) -> int:
        """The bytes tenant holds (entries that expired since the last charge included)."""
        return int(self._redis.get(self._keys_of(tenant)[2]) or 0)  # type: ignore[arg-type]

    def _retry_after_s(self, tenant: str) -> int:
        oldest = cast(list[tuple[bytes, float]], self._redis.zrange(self._keys_of(tenant)[0], 0, 0, withscores=True))
        if not oldest:
            return 1
        return max(1, min(self._ttl_ms // 1000, int((oldest[0][1] - time.time() * 1000) / 1000) + 1))
