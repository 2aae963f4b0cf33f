"""JobStore: a job's record and its event stream in Redis, with the atomic state transitions.

A job moves queued -> running -> final exactly once. Every transition is one Lua script, so a worker
finishing, a cancel and the reaper can race without a job ending twice or an event being written after
`result`. Events go to a Redis Stream per job: clients that connect late or reconnect with Last-Event-ID
read exactly what they missed (stream ids are the SSE ids).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import redis

from core import audit, keys
from core.ledger import ByteLedger
from core.models import EventType, ExecutionRequest, ExecutionResult, JobStatus, Metrics
from core.settings import Settings


def now_ms() -> int:
    """Wall-clock time in milliseconds since the epoch (comparable across hosts)."""
    return int(time.time() * 1000)


# Joins two JSON objects given as strings: '{"a":1}' + '{"b":2}' -> '{"a":1,"b":2}'.
_JOIN = """
local function join(left, right) return string.sub(left, 1, -2) .. ',' .. string.sub(right, 2) end
"""

# KEYS: job, events, tenant's active jobs, audit open, queued index. ARGV: request_json, created_ms, tenant,
# ttl_s, queued_event_json, job_id, max_active, job key prefix, audit_base_json, audit_queued_json, the list
# it will wait in. Returns the queued event id, or false when the tenant already has max_active jobs queued
# or running (members whose job ended or expired without finishing are dropped before counting). The job
# enters the queued index, which the queue sweep (core.queue_sweep) reads to find a job waiting in no list.
_CREATE = _JOIN + """
local limit = tonumber(ARGV[7])
if redis.call('SCARD', KEYS[3]) >= limit then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local status = redis.call('HGET', ARGV[8] .. id, 'status')
    if status ~= 'queued' and status ~= 'running' then redis.call('SREM', KEYS[3], id) end
  end
  if redis.call('SCARD', KEYS[3]) >= limit then return false end
end
redis.call('HSET', KEYS[1], 'status', 'queued', 'request', ARGV[1], 'created_ms', ARGV[2], 'tenant', ARGV[3],
           'active_key', KEYS[3], 'audit', ARGV[9], 'queue', ARGV[11])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[6])
redis.call('HSET', KEYS[4], ARGV[6], join(ARGV[9], ARGV[10]))
local id = redis.call('XADD', KEYS[2], '*', 'type', 'queued', 'data', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return id
"""

# The claim, queued -> running, as a Lua function: every script that takes a job (JobStore.claim,
# FairQueue.pop_claim, SessionStore.pop_claim) includes it, so a job leaves its list and becomes running,
# owned by one worker incarnation, in one step: no worker death can leave it popped but still queued.
# Such a script's first KEYS are Claimant.script_keys() (running, audit open, queued index) and its first
# ARGV Claimant.script_args() (worker, incarnation, now_ms, ttl_s, audit_running_json, job key prefix,
# events key suffix); CLAIM_KEYS and CLAIM_ARGS say how many. claim(id) returns {request_json, created_ms}
# if the job was queued (now running), else false: cancelled, finished, expired, or withdrawn by the queue
# sweep (an orphan it is ending).
CLAIM_LUA = _JOIN + """
local CLAIM_KEYS, CLAIM_ARGS = 3, 7
local function claim(id)
  local job = ARGV[6] .. id
  local state = redis.call('HMGET', job, 'status', 'withdrawn')
  if state[1] ~= 'queued' or state[2] then return false end
  redis.call('HSET', job, 'status', 'running', 'worker', ARGV[1], 'started_ms', ARGV[3], 'incarnation', ARGV[2])
  redis.call('HSET', KEYS[1], id, ARGV[1])
  redis.call('ZREM', KEYS[3], id)
  local audit = redis.call('HGET', job, 'audit')
  if audit then redis.call('HSET', KEYS[2], id, join(audit, ARGV[5])) end
  local events = job .. ARGV[7]
  redis.call('XADD', events, '*', 'type', 'started', 'data', cjson.encode({jobId = id, worker = ARGV[1]}))
  redis.call('EXPIRE', events, ARGV[4])
  return redis.call('HMGET', job, 'request', 'created_ms')
end
"""

# KEYS: claim keys. ARGV: claimant, job_id. Returns {request_json, created_ms} if the job was queued (now
# running), else false.
_CLAIM = CLAIM_LUA + """
return claim(ARGV[CLAIM_ARGS + 1])
"""

# KEYS: job, events, running, audit open, audit stream. ARGV: status, result_json, now_ms, ttl_s, job_id,
# audit_final_json, audit_maxlen, then (type, data_json) pairs of output events to append before the result.
# Returns the result event id, or false if the job was already final (or is unknown). The job leaves its
# tenant's active set and the open audit records; its complete audit record goes to the stream, in the
# same step.
_FINISH = _JOIN + """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'running' then return false end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[2], 'finished_ms', ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[5])
local active = redis.call('HGET', KEYS[1], 'active_key')
if active then redis.call('SREM', active, ARGV[5]) end
redis.call('HDEL', KEYS[4], ARGV[5])
local audit = redis.call('HGET', KEYS[1], 'audit') or ('{"jobId":"' .. ARGV[5] .. '"}')
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'data', join(audit, ARGV[6]))
for i = 8, #ARGV - 1, 2 do redis.call('XADD', KEYS[2], '*', 'type', ARGV[i], 'data', ARGV[i + 1]) end
local id = redis.call('XADD', KEYS[2], '*', 'type', 'result', 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return id
"""

# KEYS: job, events. ARGV: type, data_json. Appends only while the job is running.
_APPEND = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
return redis.call('XADD', KEYS[2], '*', 'type', ARGV[1], 'data', ARGV[2])
"""

# KEYS: job. Marks a running job for cancellation; returns the status seen.
_REQUEST_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'running' then redis.call('HSET', KEYS[1], 'cancel', '1') end
return status
"""


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: its request, where it is, and its result once final."""

    job_id: str
    status: JobStatus
    request: ExecutionRequest
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    worker: str | None
    result: ExecutionResult | None
    cancel_requested: bool


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker has just taken (queued -> running, core.jobs.CLAIM_LUA): what it needs to run it."""

    job_id: str
    request: ExecutionRequest
    created_ms: int


_JOB_PREFIX = keys.job_key("")
_EVENTS_SUFFIX = keys.job_events_key("")[len(_JOB_PREFIX):]


@dataclass(frozen=True)
class Claimant:
    """Who takes jobs: a worker's name and the incarnation of its process (workers.incarnation), recorded in
    every job it claims, and how long a claimed job's events are kept (s)."""

    worker: str
    incarnation: str
    retention_s: int

    @staticmethod
    def script_keys() -> list[str]:
        """The first KEYS of a script that includes CLAIM_LUA."""
        return [keys.RUNNING_JOBS, keys.AUDIT_OPEN, keys.QUEUED_JOBS]

    def script_args(self) -> list[str | int]:
        """The first ARGV of a script that includes CLAIM_LUA (the claim's time is now)."""
        started_ms = now_ms()
        return [self.worker, self.incarnation, started_ms, self.retention_s,
                audit.running_suffix(self.worker, started_ms), _JOB_PREFIX, _EVENTS_SUFFIX]

    @staticmethod
    def claimed(reply: Any) -> ClaimedJob | None:
        """The job a pop-and-claim script returned ({job_id, request_json, created_ms}), or None (false)."""
        if not reply:
            return None
        job_id, request_json, created_ms = reply
        return ClaimedJob(_text(job_id), ExecutionRequest.from_json(_text(request_json)), int(created_ms))


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's stream; `event_id` is the Redis stream id, used as the SSE id."""

    event_id: str
    type: EventType
    data: dict[str, Any]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class JobStore:
    """Reads and writes jobs and their events; every method is one or two Redis round trips."""

    def __init__(self, client: redis.Redis, *, retention_s: int, audit_maxlen: int = 100_000,
                 audit_include_code: bool = False, stored: ByteLedger | None = None) -> None:
        self._redis = client
        self._stored = stored  # what each tenant's jobs hold in Redis, against TENANT_MAX_STORED_BYTES
        self._retention_s = retention_s
        self._audit_maxlen = audit_maxlen
        self._audit_include_code = audit_include_code
        self._create = client.register_script(_CREATE)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._append = client.register_script(_APPEND)
        self._request_cancel = client.register_script(_REQUEST_CANCEL)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> JobStore:
        """The store with the retention and audit choices of settings (the API and every worker host)."""
        return cls(client, retention_s=settings.job_retention_seconds, audit_maxlen=settings.audit_stream_maxlen,
                   audit_include_code=settings.audit_include_code,
                   stored=ByteLedger(client, keys.tenant_stored_keys, budget=settings.tenant_max_stored_bytes,
                                     ttl_s=settings.job_retention_seconds))

    def create(self, job_id: str, request: ExecutionRequest, *, max_active: int = 1 << 30) -> JobEvent | None:
        """Store a new queued job, its `queued` event and its open audit record; returns that event, or
        None when the tenant already has max_active jobs queued or running. Raises OverBudget (nothing stored)
        when the tenant's jobs already hold TENANT_MAX_STORED_BYTES in Redis."""
        created = now_ms()
        data = json.dumps({"jobId": job_id, "status": JobStatus.QUEUED.value})
        request_json = request.to_json()
        base = audit.base_record(job_id, request, created, include_code=self._audit_include_code)
        if self._stored is not None:
            self._stored.charge(request.tenant, job_id, len(request_json) + len(base) + len(data))
        event_id = self._create(
            keys=[keys.job_key(job_id), keys.job_events_key(job_id), keys.tenant_active_jobs_key(request.tenant),
                  keys.AUDIT_OPEN, keys.QUEUED_JOBS],
            args=[request_json, created, request.tenant, self._retention_s, data, job_id, max_active,
                  keys.job_key(""), base, audit.queued_suffix(),
                  keys.job_queue_key(request.session_id, request.tenant)],
        )
        if not event_id:
            if self._stored is not None:
                self._stored.release(request.tenant, job_id)
            return None
        return JobEvent(_text(event_id), EventType.QUEUED, json.loads(data))

    def tenant_of(self, job_id: str) -> str | None:
        """The job's tenant alone (its record is not read), or None when unknown or expired."""
        tenant = self._redis.hget(keys.job_key(job_id), "tenant")
        return _text(tenant) if tenant is not None else None

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record, or None when unknown or expired."""
        stored = cast(dict[bytes, bytes], self._redis.hgetall(keys.job_key(job_id)))
        raw = {_text(k): _text(v) for k, v in stored.items()}
        if "status" not in raw:
            return None
        result = ExecutionResult.from_api(json.loads(raw["result"])) if "result" in raw else None
        return JobRecord(
            job_id=job_id,
            status=JobStatus(raw["status"]),
            request=ExecutionRequest.from_json(raw["request"]),
            created_ms=int(raw["created_ms"]),
            started_ms=int(raw["started_ms"]) if "started_ms" in raw else None,
            finished_ms=int(raw["finished_ms"]) if "finished_ms" in raw else None,
            worker=raw.get("worker"),
            result=result,
            cancel_requested=raw.get("cancel") == "1",
        )

    def claimant(self, worker: str, *, incarnation: str = "") -> Claimant:
        """Who claims jobs in `worker`'s process (its current `incarnation`, see workers.incarnation)."""
        return Claimant(worker, incarnation, self._retention_s)

    def claim(self, job_id: str, worker: str, *, incarnation: str = "") -> tuple[ExecutionRequest, int] | None:
        """Move a queued job to running on `worker` (its current `incarnation`, see workers.incarnation):
        (request, created_ms), or None if it was cancelled, finished, expired or withdrawn."""
        claimant = self.claimant(worker, incarnation=incarnation)
        raw = self._claim(keys=claimant.script_keys(), args=[*claimant.script_args(), job_id])
        if not raw:
            return None
        request_json, created_ms = raw
        return ExecutionRequest.from_json(_text(request_json)), int(created_ms)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a cancel was asked for the job while it was running."""
        return self._redis.hget(keys.job_key(job_id), "cancel") in (b"1", "1")

    def append(self, job_id: str, event_type: EventType, data: dict[str, Any]) -> str | None:
        """Add an output event to a running job; returns its id, or None once the job is final."""
        event_id = self._append(
            keys=[keys.job_key(job_id), keys.job_events_key(job_id)],
            args=[event_type.value, json.dumps(data)],
        )
        return _text(event_id) if event_id else None

    def finish(self, result: ExecutionResult, *, by_service: bool = False, tenant: str | None = None,
               events: Iterable[tuple[EventType, dict[str, Any]]] = ()) -> bool:
        """Make the job final with `result` (also its `result` event); False if it already was final.
        by_service: the service, not the sandbox, produced result's error (core.error_types). tenant: whose
        stored bytes the result (and the output events it repeats) are charged to. events: output events not
        appended yet, added just before the result in the same step (one round trip less); the result repeats
        them, so its charge covers them."""
        finished = now_ms()
        result_json = json.dumps(result.to_api())
        script_keys = [keys.job_key(result.job_id), keys.job_events_key(result.job_id), keys.RUNNING_JOBS,
                       keys.AUDIT_OPEN, keys.AUDIT_STREAM]
        args = [result.status.value, result_json, finished, self._retention_s, result.job_id,
                audit.final_suffix(result, finished, by_service=by_service), self._audit_maxlen,
                *[part for event_type, data in events for part in (event_type.value, json.dumps(data))]]
        if self._stored is None or tenant is None:
            return bool(self._finish(keys=script_keys, args=args))
        pipe = self._redis.pipeline(transaction=False)  # one round trip: the result, and its bytes charged
        self._finish(keys=script_keys, args=args, client=pipe)
        self._stored.charge(tenant, f"{result.job_id}:result", 2 * len(result_json), forced=True, client=pipe)
        event_id, _ = pipe.execute()
        return bool(event_id)

    def finish_without_running(self, record: JobRecord, status: JobStatus, *,
                               error: dict[str, Any] | None = None) -> bool:
        """End a job our machinery gave up on (cancelled, worker lost) with an empty result."""
        started = record.started_ms or now_ms()
        result = ExecutionResult(
            job_id=record.job_id,
            status=status,
            session_id=record.request.session_id,
            error=error,
            metrics=Metrics(queued_ms=max(0, started - record.created_ms)),
            worker=record.worker,
            findings=list(record.request.findings),
        )
        return self.finish(result, by_service=True, tenant=record.request.tenant)

    def cancel(self, job_id: str) -> JobStatus | None:
        """Cancel a job: a queued one ends now, a running one is flagged and its worker told to kill it."""
        seen = self._request_cancel(keys=[keys.job_key(job_id)], args=[])
        if seen is None:
            return None
        status = JobStatus(_text(seen))
        if status is JobStatus.QUEUED:
            record = self.get(job_id)
            if record is not None and self.finish_without_running(record, JobStatus.CANCELLED):
                return JobStatus.CANCELLED
            return self.cancel(job_id)  # it was claimed meanwhile: cancel it as a running job
        if status is JobStatus.RUNNING:
            self._redis.publish(keys.CANCEL_CHANNEL, job_id)
        return status

    def read_events(self, job_id: str, *, after: str = "0-0", block_ms: int | None = None,
                    count: int = 500) -> list[JobEvent]:
        """Events after stream id `after` (exclusive), waiting up to block_ms for the first one."""
        reply = cast(list[Any], self._redis.xread({keys.job_events_key(job_id): after}, count=count, block=block_ms))
        events: list[JobEvent] = []
        for _stream, entries in reply or []:
            for event_id, fields in entries:
                decoded = {_text(k): _text(v) for k, v in fields.items()}
                event_type = EventType(decoded["type"])
                events.append(JobEvent(_text(event_id), event_type, json.loads(decoded["data"])))
        return events

    def running_jobs(self) -> dict[str, str]:
        """Job id -> worker name for every claimed, unfinished job."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(keys.RUNNING_JOBS))
        return {_text(k): _text(v) for k, v in raw.items()}

    def await_final(self, job_id: str, timeout_ms: int) -> JobStatus | None:
        """Wait up to timeout_ms for the job to be final; its final status, or None if it still is not."""
        deadline = time.monotonic() + timeout_ms / 1000
        newest = cast(list[Any], self._redis.xrevrange(keys.job_events_key(job_id), count=1))
        after = _text(newest[0][0]) if newest else "0-0"  # read before the status: no result is missed
        while True:
            raw = self._redis.hget(keys.job_key(job_id), "status")
            if raw is None:
                return None
            status = JobStatus(_text(raw))
            if status.is_final:
                return status
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return None
            events = self.read_events(job_id, after=after, block_ms=remaining_ms, count=100)
            if events:
                after = events[-1].event_id

    def reap_overdue_jobs(self, *, now: int, grace_ms: int, install_allowance_ms: int) -> list[str]:
        """End as `error` every running job past its timeout plus grace_ms (plus install_allowance_ms when
        it installs packages), whatever its worker says: a job never stays running for ever. Every worker
        runs this each heartbeat, so the running jobs' start times are read in one round trip."""
        running = list(self.running_jobs())
        pipe = self._redis.pipeline(transaction=False)
        for job_id in running:
            pipe.hmget(keys.job_key(job_id), ["started_ms", "request"])
        reaped: list[str] = []
        for job_id, (started, request_json) in zip(running, pipe.execute(), strict=True):
            if started is None or request_json is None:
                continue
            request = ExecutionRequest.from_json(_text(request_json))
            allowance = grace_ms + (install_allowance_ms if request.packages else 0)
            if now <= int(started) + request.timeout_ms + allowance:
                continue
            record = self.get(job_id)
            if record is None or record.status is not JobStatus.RUNNING:
                continue
            error = {"type": "DeadlineExceeded", "traceback": [],
                     "message": f"the job did not end within its timeout plus {allowance // 1000} s; "
                                "the service ended it"}
            if self.finish_without_running(record, JobStatus.ERROR, error=error):
                reaped.append(job_id)
        return reaped

    def reap_lost_jobs(self, alive_workers: Iterable[str]) -> list[str]:
        """End as worker_lost every running job whose worker is not alive; returns their ids."""
        alive = set(alive_workers)
        reaped: list[str] = []
        for job_id, worker in self.running_jobs().items():
            if worker in alive:
                continue
            record = self.get(job_id)
            if record is None:
                self._redis.hdel(keys.RUNNING_JOBS, job_id)
                continue
            error = {"type": "WorkerLost", "message": f"worker {worker} stopped while running this job",
                     "traceback": []}
            if self.finish_without_running(record, JobStatus.WORKER_LOST, error=error):
                reaped.append(job_id)
        return reaped

    def reap_stale_incarnations(self, incarnations: dict[str, tuple[str, int]]) -> list[str]:
        """End as worker_lost every running job claimed by a worker named in `incarnations` (name ->
        (its current incarnation, when that started in ms)) under an older incarnation: a process restarted
        under the same name is alive, but what its previous process was running is not. A job claimed after
        that start by an incarnation not yet seen here is newer, and left alone. Returns the ids ended."""
        running = [(job_id, worker) for job_id, worker in self.running_jobs().items() if worker in incarnations]
        if not running:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for job_id, _ in running:
            pipe.hmget(keys.job_key(job_id), ["incarnation", "started_ms"])
        reaped: list[str] = []
        for (job_id, worker), (claimed_by, started) in zip(running, pipe.execute(), strict=True):
            current, current_started_ms = incarnations[worker]
            if claimed_by is not None and _text(claimed_by) == current:
                continue
            if started is not None and int(started) >= current_started_ms:
                continue
            record = self.get(job_id)
            if record is None:
                self._redis.hdel(keys.RUNNING_JOBS, job_id)
                continue
            if record.status is not JobStatus.RUNNING:
                continue
            error = {"type": "WorkerLost", "traceback": [],
                     "message": f"worker {worker} restarted while running this job"}
            if self.finish_without_running(record, JobStatus.WORKER_LOST, error=error):
                reaped.append(job_id)
        return reaped
