"""SessionStore: session records, their pending-job lists, and who owns what.

A session lives on the worker host that created it. Its record names that owner; the API routes the
session's work to the owner's own queue, and the owner runs the session's jobs one at a time in the
order of the session's job list (the order the API accepted them).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from core import keys
from core.jobs import CLAIM_LUA, Claimant, ClaimedJob, JobStore, now_ms
from core.models import JobStatus, SessionStatus, iso_time


@dataclass(frozen=True)
class SessionRecord:
    """A session as stored."""

    session_id: str
    tenant: str
    worker: str
    status: SessionStatus
    created_ms: int
    last_used_ms: int
    execution_count: int
    variables: dict[str, Any]
    resources: dict[str, Any]
    idle_timeout_ms: int
    packages: tuple[str, ...] = ()  # "name==version" of what was installed into the session
    isolation: str = "runc"  # the tier (core.isolation.Tier value) of the session's sandbox

    @property
    def expires_ms(self) -> int:
        return self.last_used_ms + self.idle_timeout_ms

    def to_api(self) -> dict[str, Any]:
        """The session view of the API."""
        return {
            "sessionId": self.session_id,
            "status": self.status.value,
            "createdAt": iso_time(self.created_ms),
            "lastUsedAt": iso_time(self.last_used_ms),
            "expiresAt": iso_time(self.expires_ms),
            "executionCount": self.execution_count,
            "variables": self.variables,
            "packages": list(self.packages),
            "resources": self.resources or {"memoryBytes": None, "cpuPercent": None, "diskBytes": None},
            "worker": self.worker,
            "isolation": self.isolation,
        }


# KEYS: session. ARGV: field, value. Updates a session that still exists (never re-creates a deleted one).
_SET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""

# KEYS: session, its pending jobs. ARGV: job_id, retention_s. Queues the job only while the session has not ended, so
# a job never lands in the list of a session that delete()/end() already drained (nothing would end it).
_PUSH_IF_LIVE = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'starting' and status ~= 'ready' and status ~= 'busy' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# KEYS: session, worker's sessions, tenant's sessions, sessions-created counter. ARGV: max_sessions,
# session_id, tenant, worker, status, now_ms, idle_timeout_ms, max_tenant_sessions, session key prefix,
# isolation tier.
# Returns 1; 0 if the worker is full; -1 if the tenant already has max_tenant_sessions live (or starting).
_RESERVE = """
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
local live = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local status = redis.call('HGET', ARGV[9] .. id, 'status')
  if status == 'starting' or status == 'ready' or status == 'busy' then live = live + 1 end
end
if live >= tonumber(ARGV[8]) then return -1 end
redis.call('HSET', KEYS[1], 'tenant', ARGV[3], 'worker', ARGV[4], 'status', ARGV[5], 'created_ms', ARGV[6],
           'last_used_ms', ARGV[6], 'execution_count', 0, 'variables', '{}', 'resources', '{}',
           'idle_timeout_ms', ARGV[7], 'isolation', ARGV[10])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('INCR', KEYS[4])
return 1
"""

# KEYS: session. ARGV: status, variables_json ('' keeps them), now_ms, '1' if it was an execution,
# packages_json ('' keeps them).
_RECORD_EXECUTION = """
if redis.call('EXISTS', KEYS[1]) == 0 then return end
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'execution_count', 1) end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'last_used_ms', ARGV[3])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'variables', ARGV[2]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'packages', ARGV[5]) end
"""


# KEYS: session's jobs, session. Pops the oldest pending job and records it as the session's current one,
# in one step (an interrupt never sees a job that is neither pending nor current).
_POP_JOB = """
local job = redis.call('LPOP', KEYS[1])
if job and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'current_job', job) end
return job
"""
# KEYS: claim keys, session's jobs, session. ARGV: claimant. Pops the oldest pending job that is still queued
# and claims it for the claimant (now running), recording it as the session's current one, in one step: a
# worker that dies at any moment leaves the job either pending (the session's end ends it) or running (the
# reaper ends it). Entries of jobs no longer queued (cancelled while pending) are dropped on the way.
# Returns {job_id, request_json, created_ms}, or false when no queued job is pending.
_POP_CLAIM = CLAIM_LUA + """
local jobs, session = KEYS[CLAIM_KEYS + 1], KEYS[CLAIM_KEYS + 2]
for _ = 1, 1000 do
  local job = redis.call('LPOP', jobs)
  if not job then return false end
  local claimed = claim(job)
  if claimed then
    if redis.call('EXISTS', session) == 1 then redis.call('HSET', session, 'current_job', job) end
    return {job, claimed[1], claimed[2]}
  end
end
return false
"""

# KEYS: session, session's jobs. ARGV: job key prefix. The job an interrupt is for: the current one while
# it is queued or running, else the oldest pending one that has not ended (sent just now, not taken yet;
# one cancelled while pending stays listed until the session skips it); false if none.
_INTERRUPT_TARGET = """
local function live(job)
  local status = redis.call('HGET', ARGV[1] .. job, 'status')
  return status == 'queued' or status == 'running'
end
local current = redis.call('HGET', KEYS[1], 'current_job')
if current and live(current) then return current end
for _, job in ipairs(redis.call('LRANGE', KEYS[2], 0, 99)) do
  if live(job) then return job end
end
return false
"""


class Reservation(enum.Enum):
    """What reserve() did."""

    RESERVED = "reserved"
    WORKER_FULL = "worker_full"
    TENANT_FULL = "tenant_full"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SessionStore:
    """Reads and writes sessions; all keys come from core.keys."""

    def __init__(self, client: redis.Redis, jobs: JobStore, *, retention_s: int) -> None:
        self._redis = client
        self._jobs = jobs
        self._retention_s = retention_s
        self._set_if_exists = client.register_script(_SET_IF_EXISTS)
        self._record_execution = client.register_script(_RECORD_EXECUTION)
        self._reserve = client.register_script(_RESERVE)
        self._push_if_live = client.register_script(_PUSH_IF_LIVE)
        self._pop_job = client.register_script(_POP_JOB)
        self._pop_claim = client.register_script(_POP_CLAIM)
        self._interrupt_target = client.register_script(_INTERRUPT_TARGET)

    def reserve(self, session_id: str, *, tenant: str, worker: str, max_sessions: int,
                idle_timeout_ms: int, max_tenant_sessions: int = 1 << 30, isolation: str = "runc") -> Reservation:
        """Record a session of tier `isolation` starting on `worker` unless the worker already owns
        max_sessions or the tenant has max_tenant_sessions live ones."""
        created = now_ms()
        answer = int(cast(int, self._reserve(
            keys=[keys.session_key(session_id), keys.worker_sessions_key(worker), keys.tenant_sessions_key(tenant),
                  keys.SESSIONS_CREATED],
            args=[max_sessions, session_id, tenant, worker, SessionStatus.STARTING.value, created, idle_timeout_ms,
                  max_tenant_sessions, keys.session_key(""), isolation],
        )))
        return {1: Reservation.RESERVED, 0: Reservation.WORKER_FULL}.get(answer, Reservation.TENANT_FULL)

    def count_of_worker(self, worker: str) -> int:
        return int(cast(int, self._redis.scard(keys.worker_sessions_key(worker))))

    def created_total(self) -> int:
        """Sessions ever created in this cluster."""
        return int(cast(bytes | None, self._redis.get(keys.SESSIONS_CREATED)) or 0)

    def tenant_of(self, session_id: str) -> str | None:
        """The session's tenant alone (its record is not read), or None when unknown."""
        tenant = self._redis.hget(keys.session_key(session_id), "tenant")
        return _text(tenant) if tenant is not None else None

    def get(self, session_id: str) -> SessionRecord | None:
        raw = {_text(k): _text(v) for k, v in
               cast(dict[bytes, bytes], self._redis.hgetall(keys.session_key(session_id))).items()}
        if "status" not in raw:
            return None
        return SessionRecord(
            session_id=session_id, tenant=raw["tenant"], worker=raw["worker"],
            status=SessionStatus(raw["status"]), created_ms=int(raw["created_ms"]),
            last_used_ms=int(raw["last_used_ms"]), execution_count=int(raw["execution_count"]),
            variables=json.loads(raw["variables"]), resources=json.loads(raw["resources"]),
            idle_timeout_ms=int(raw["idle_timeout_ms"]),
            packages=tuple(json.loads(raw.get("packages", "[]"))),
            isolation=raw.get("isolation", "runc"),
        )

    def set_status(self, session_id: str, status: SessionStatus) -> None:
        """Change the status of an existing session (never re-creates a deleted one)."""
        self._set_if_exists(keys=[keys.session_key(session_id)], args=["status", status.value])

    def record_execution(self, session_id: str, *, variables: dict[str, Any] | None, lost: bool,
                         counted: bool = True, packages: list[str] | None = None) -> None:
        """After a job: used now, lost if its interpreter died; one more execution if `counted` (code ran);
        its variables and installed packages when given (None keeps what was recorded)."""
        status = SessionStatus.LOST if lost else SessionStatus.READY
        self._record_execution(keys=[keys.session_key(session_id)],
                               args=[status.value, "" if variables is None else json.dumps(variables), now_ms(),
                                     "1" if counted else "0", "" if packages is None else json.dumps(packages)])

    def set_resources(self, samples: dict[str, dict[str, Any]]) -> None:
        """Store the latest resource figures of several sessions at once."""
        pipe = self._redis.pipeline(transaction=False)
        for session_id, figures in samples.items():
            self._set_if_exists(keys=[keys.session_key(session_id)], args=["resources", json.dumps(figures)],
                                client=pipe)
        pipe.execute()

    def push_job(self, session_id: str, job_id: str) -> bool:
        """Append a job to the session's ordered list of pending jobs; False (nothing queued) if the session has
        ended (deleted, lost or expired since the caller looked)."""
        return bool(self._push_if_live(keys=[keys.session_key(session_id), keys.session_jobs_key(session_id)],
                                       args=[job_id, self._retention_s]))

    def pop_job(self, session_id: str) -> str | None:
        """The session's oldest pending job id, removed from the list (and now its current job)."""
        raw = self._pop_job(keys=[keys.session_jobs_key(session_id), keys.session_key(session_id)], args=[])
        return _text(raw) if raw else None

    def pop_claim(self, session_id: str, claimant: Claimant) -> ClaimedJob | None:
        """The session's oldest pending job that is still queued, removed from the list, claimed for
        claimant (now running) and made the session's current job, in one step; None when none is pending."""
        return claimant.claimed(self._pop_claim(
            keys=[*claimant.script_keys(), keys.session_jobs_key(session_id), keys.session_key(session_id)],
            args=claimant.script_args()))

    def interrupt_target(self, session_id: str) -> str | None:
        """The job an interrupt stops: the running (or just taken) one, else the oldest pending one."""
        raw = self._interrupt_target(keys=[keys.session_key(session_id), keys.session_jobs_key(session_id)],
                                     args=[keys.job_key("")])
        return _text(raw) if raw else None

    def ids_of_worker(self, worker: str) -> list[str]:
        return sorted(_text(v) for v in cast(set[bytes], self._redis.smembers(keys.worker_sessions_key(worker))))

    def ids_of_tenant(self, tenant: str) -> list[str]:
        return sorted(_text(v) for v in cast(set[bytes], self._redis.smembers(keys.tenant_sessions_key(tenant))))

    def end(self, session_id: str, status: SessionStatus, *, job_error: str) -> list[str]:
        """Mark a session lost or expired (kept for the retention time) and end its pending jobs."""
        record = self.get(session_id)
        if record is None:
            return []
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(keys.session_key(session_id), "status", status.value)
        pipe.expire(keys.session_key(session_id), self._retention_s)
        pipe.srem(keys.worker_sessions_key(record.worker), session_id)
        pipe.execute()
        return self._end_pending_jobs(session_id, job_error)

    def delete(self, session_id: str) -> SessionRecord | None:
        """Remove a session's record (later use is 404) and end its pending jobs; returns what it was."""
        record = self.get(session_id)
        if record is None:
            return None
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(keys.session_key(session_id))
        pipe.srem(keys.worker_sessions_key(record.worker), session_id)
        pipe.srem(keys.tenant_sessions_key(record.tenant), session_id)
        pipe.execute()
        self._end_pending_jobs(session_id, "the session was deleted")
        return record

    def _end_pending_jobs(self, session_id: str, message: str) -> list[str]:
        ended: list[str] = []
        while (job_id := self.pop_job(session_id)) is not None:
            record = self._jobs.get(job_id)
            if record is not None and self._jobs.finish_without_running(
                    record, JobStatus.WORKER_LOST, error={"type": "SessionGone", "message": message,
                                                          "traceback": []}):
                ended.append(job_id)
        return ended

    def reap_dead_workers(self, alive_workers: Iterable[str]) -> list[str]:
        """Sessions of workers that are not alive become lost, their pending jobs worker_lost."""
        alive = set(alive_workers)
        lost: list[str] = []
        for raw in cast(set[bytes], self._redis.smembers(keys.WORKERS)):
            worker = _text(raw)
            if worker in alive:
                continue
            for session_id in self.ids_of_worker(worker):
                self.end(session_id, SessionStatus.LOST, job_error=f"worker {worker} stopped")
                lost.append(session_id)
        return lost
