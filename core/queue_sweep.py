"""QueueSweep: no queued job waits for ever, whatever was lost on its way to a worker.

A worker takes a job in one step (pop and claim, core.fair_queue and core.sessions), so a worker's death
never leaves a popped job `queued`. Two losses remain, and the sweep repairs both:

- A lost doorbell. Celery acknowledges a `penny.execute` message early, so a doorbell a worker had taken
  (prefetched, or acknowledged and not yet popped) dies with that worker; one the API had yet to send when
  it stopped was never there. Its job waits in its tenant's list until another job's doorbell happens to
  serve it, or for ever when the tenant sends nothing more.
- A job in no list. The API stopped between storing a job and queuing it (or the list's data was lost):
  nothing would ever take it, and it counts against its tenant's active-job quota until its record expires.

Every worker calls sweep() on each heartbeat; a lease lets one call per SWEEP_INTERVAL_MS do the work, so
the cluster spends one script call per worker per heartbeat and one sweep per interval, whatever its size.

1. Doorbells. What is outstanding cannot be counted exactly: with early ack, a doorbell a live worker holds
   (prefetched, or acknowledged and about to pop) is in no Redis list, and one that died with its worker
   looks the same (kombu returns unacknowledged messages only after their visibility timeout, an hour). So
   the sweep counts what it can see, the entries waiting in the tenants' lists and the doorbells in the
   broker's queue, and rings the difference when the previous sweep saw a deficit too (a job pushed a moment
   before its doorbell is sent is not one). Ringing in excess is harmless, and bounded: a doorbell that finds
   nothing returns, and the sweep never makes the broker's queue longer than the lists. So any job waiting
   in a list is taken within about two sweep intervals of a worker thread being free.
2. Orphans. The queued index (keys.QUEUED_JOBS) holds every job from its creation until its claim, scored
   by when it was last seen waiting where it should. A job still `queued` ORPHAN_GRACE_MS after that, and
   not in its list (the job records which, keys.job_queue_key), is withdrawn (every claim refuses it from
   then on, so a late push cannot start it) and ended `worker_lost` (WorkerLost: it never ran, the client
   may submit it again). A job found in its list is looked at again a grace later. A sweep that stops between
   the withdrawal and the end leaves a withdrawn job, which the next sweep ends: it ends exactly once (the
   finish is the job's one final transition). Entries of jobs that ended otherwise are dropped when due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis

from core import keys
from core.jobs import JobStore, now_ms
from core.models import JobStatus

log = logging.getLogger(__name__)

# One sweep per this interval in the whole cluster (every worker offers one each heartbeat, ~1 s).
SWEEP_INTERVAL_MS = 1000
# A job may be queued in no list this long (the moment between the API storing it and queuing it) before it
# is taken for lost.
ORPHAN_GRACE_MS = 30_000
# Queued jobs looked at per sweep (the oldest first; the others on the next sweeps).
CHECKED_PER_SWEEP = 100

ORPHAN_ERROR = {"type": "WorkerLost", "traceback": [],
                "message": "the job was lost before a worker took it; it never ran; submit it again"}

# KEYS: lease, ring, broker queue, deficit, queued index. ARGV: worker, interval_ms, tenant list prefix,
# now_ms, grace_ms, max_checked, job key prefix. Returns false when another worker holds this interval's
# lease, else {doorbells to ring, ids of the orphans withdrawn}.
_SWEEP = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local waiting = 0
for _, tenant in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  waiting = waiting + redis.call('LLEN', ARGV[3] .. tenant)
end
local deficit = math.max(0, waiting - redis.call('LLEN', KEYS[3]))
local seen = tonumber(redis.call('GET', KEYS[4]) or '0')
redis.call('SET', KEYS[4], deficit, 'PX', 3 * tonumber(ARGV[2]))
local now = tonumber(ARGV[4])
local orphans = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[5]), 'LIMIT', 0, tonumber(ARGV[6]))
for _, id in ipairs(due) do
  local job = ARGV[7] .. id
  local state = redis.call('HMGET', job, 'status', 'queue', 'withdrawn')
  if state[1] ~= 'queued' then
    redis.call('ZREM', KEYS[5], id)
  elseif state[2] and not state[3] and redis.call('LPOS', state[2], id) then
    redis.call('ZADD', KEYS[5], now, id)
  else
    if not state[3] then redis.call('HSET', job, 'withdrawn', now) end
    orphans[#orphans + 1] = id
  end
end
return {math.min(deficit, seen), orphans}
"""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did: doorbells rung, and the orphaned jobs it ended `worker_lost`."""

    rung: int
    ended: list[str]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class QueueSweep:
    """Rings the doorbells lost on the way and ends the jobs queued in no list; see the module docstring."""

    def __init__(self, client: redis.Redis, jobs: JobStore, *, grace_ms: int = ORPHAN_GRACE_MS,
                 interval_ms: int = SWEEP_INTERVAL_MS, checked_per_sweep: int = CHECKED_PER_SWEEP) -> None:
        self._redis = client
        self._jobs = jobs
        self._grace_ms = grace_ms
        self._interval_ms = interval_ms
        self._checked = checked_per_sweep
        self._sweep = client.register_script(_SWEEP)

    def sweep(self, worker: str, ring: Callable[[], None]) -> SweepReport | None:
        """Sweep now unless another worker swept within the interval (None): call ring() once per doorbell
        missing, end the orphans. Safe to call from every worker at once."""
        raw = self._sweep(
            keys=[keys.QUEUE_SWEEP_LEASE, keys.FAIR_RING, keys.SHARED_QUEUE, keys.DOORBELL_DEFICIT,
                  keys.QUEUED_JOBS],
            args=[worker, self._interval_ms, keys.FAIR_TENANT_PREFIX, now_ms(), self._grace_ms, self._checked,
                  keys.job_key("")])
        if not raw:
            return None
        missing, orphans = cast(list[Any], raw)
        for _ in range(int(missing)):
            ring()
        ended = []
        for job_id in (_text(raw_id) for raw_id in orphans):
            record = self._jobs.get(job_id)
            if record is not None and record.status is JobStatus.QUEUED and self._jobs.finish_without_running(
                    record, JobStatus.WORKER_LOST, error=ORPHAN_ERROR):
                ended.append(job_id)
            self._redis.zrem(keys.QUEUED_JOBS, job_id)  # ended: by this sweep or meanwhile
        if missing:
            log.warning("queue sweep: %d queued jobs had no doorbell; rang %d", int(missing), int(missing))
        for job_id in ended:
            log.warning("job %s: queued in no list for %d s; ended worker_lost", job_id, self._grace_ms // 1000)
        return SweepReport(int(missing), ended)
