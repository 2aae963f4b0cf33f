"""The audit trail: one record per execution, written in the same Redis transaction as its state changes.

- Accepting a job stores its audit *base* (tenant, job, session, sha256 and size of the code, packages,
  findings) in the job's hash and puts an open record (status queued, then running with its worker) in the
  hash `penny:audit:open`.
- Finishing a job (worker, cancel or reaper: all go through JobStore.finish) removes the open record and
  appends the complete one (final status, duration, cpu, peak memory, worker) to the bounded stream
  `penny:audit`. Nothing can end without its record, and a job that never ends stays visible as open.
- AuditArchiver copies the stream to an append-only JSON-lines file (a consumer group: each record is
  written once, acknowledged only after it reached the file; a failed write is retried and counted).

The Lua scripts build records by joining two JSON objects as strings (Redis's cjson would turn empty
lists into objects), so every fragment is made here with json.dumps.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis

from core import keys
from core.error_types import audited_error_type
from core.models import ExecutionRequest, ExecutionResult, JobStatus, iso_time

log = logging.getLogger(__name__)

ARCHIVE_GROUP = "archive"
ARCHIVE_BATCH = 200
ARCHIVE_BLOCK_MS = 1000
# Records a crashed archiver had read but not written are taken over after this long.
ARCHIVE_RECLAIM_MS = 30_000
# After a batch smaller than ARCHIVE_BATCH, the archiver waits this long for more records: under load one
# read, one file write (and fsync) and one ack then cover a few hundred jobs, not one or two.
ARCHIVE_LINGER_S = 0.25
RETRY_S = 1.0
MAX_QUERY_LIMIT = 1000
QUERY_BATCH = 500


def _kind(request: ExecutionRequest) -> str:
    if request.session_op is not None:
        return str(request.session_op["op"])  # "restart", "files.put", ...
    if request.code:
        return "execution"
    return "install" if request.packages else "variables"


def base_record(job_id: str, request: ExecutionRequest, accepted_ms: int, *, include_code: bool) -> str:
    """The fields known when a job is accepted, as a JSON object."""
    code = request.code.encode()
    record: dict[str, Any] = {
        "jobId": job_id,
        "tenant": request.tenant,
        "keyId": request.key_id,  # the key's short hash (None: the API runs open); never the key
        "sessionId": request.session_id,
        "kind": _kind(request),
        "acceptedAt": iso_time(accepted_ms),
        "acceptedMs": accepted_ms,
        "codeSha256": hashlib.sha256(code).hexdigest(),
        "codeBytes": len(code),
        "packages": list(request.packages),
        "findings": [{k: f.get(k) for k in ("rule", "line", "col", "severity")} for f in request.findings],
    }
    if request.session_op is not None and "path" in request.session_op:
        record["path"] = request.session_op["path"]
    if include_code:
        record["code"] = request.code
    return json.dumps(record)


def queued_suffix() -> str:
    return json.dumps({"status": JobStatus.QUEUED.value})


def running_suffix(worker: str, started_ms: int) -> str:
    return json.dumps({"status": JobStatus.RUNNING.value, "worker": worker, "startedAt": iso_time(started_ms)})


def final_suffix(result: ExecutionResult, finished_ms: int, *, by_service: bool = False) -> str:
    """The fields known when a job ends (by_service: the service, not the sandbox, produced its error)."""
    violation = next((f for f in result.findings if f.get("source") == "runtime"), None)
    error_type, user_error_type = audited_error_type((result.error or {}).get("type"), by_service=by_service)
    return json.dumps({
        "status": result.status.value,
        "worker": result.worker,
        "finishedAt": iso_time(finished_ms),
        "queuedMs": result.metrics.queued_ms,
        "durationMs": result.metrics.duration_ms,
        "cpuMs": result.metrics.cpu_ms,
        "peakMemoryBytes": result.metrics.peak_memory_bytes,
        "errorType": error_type,  # a known name or UserDefinedError (core.error_types)
        "userErrorType": user_error_type,
        "violation": violation,
    })


@dataclass(frozen=True)
class AuditQuery:
    """GET /api/v1/audit's filters; times are ms since the epoch, `before` a cursor from a previous page."""

    tenant: str | None = None
    status: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100
    before: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry_record(entry_id: Any, fields: dict[Any, Any]) -> dict[str, Any]:
    """A stream entry as its audit record, with `auditId` (the entry id: the cursor, and the file's key)."""
    record: dict[str, Any] = json.loads(_text(fields.get(b"data", fields.get("data", b"{}"))))
    record["auditId"] = _text(entry_id)
    return record


class AuditTrail:
    """Reads the trail: open records (jobs not finished) and the stream of finished ones."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def _matches(self, record: dict[str, Any], query: AuditQuery, time_ms: int) -> bool:
        if query.tenant is not None and record.get("tenant") != query.tenant:
            return False
        if query.status is not None and record.get("status") != query.status:
            return False
        if query.since_ms is not None and time_ms < query.since_ms:
            return False
        return query.until_ms is None or time_ms <= query.until_ms

    def open_records(self, query: AuditQuery) -> list[dict[str, Any]]:
        """Jobs accepted and not finished (newest first), by when they were accepted."""
        raw = cast(dict[bytes, bytes], self._redis.hgetall(keys.AUDIT_OPEN))
        records = [json.loads(value) for value in raw.values()]
        kept = [r for r in records if self._matches(r, query, int(r.get("acceptedMs", 0)))]
        return sorted(kept, key=lambda r: -int(r.get("acceptedMs", 0)))

    def query(self, query: AuditQuery) -> tuple[list[dict[str, Any]], str | None]:
        """(records newest first, cursor for the next page or None). Finished jobs are selected by when
        they ended; the first page starts with the jobs still open."""
        limit = max(1, min(query.limit, MAX_QUERY_LIMIT))
        records = self.open_records(query)[:limit] if query.before is None else []
        high = f"({query.before}" if query.before else (str(query.until_ms) if query.until_ms is not None else "+")
        low = str(query.since_ms) if query.since_ms is not None else "-"
        cursor: str | None = None
        while len(records) < limit:
            batch = cast(list[Any], self._redis.xrevrange(keys.AUDIT_STREAM, max=high, min=low, count=QUERY_BATCH))
            if not batch:
                return records, None
            for entry_id, fields in batch:
                record = _entry_record(entry_id, fields)
                cursor = record["auditId"]
                if self._matches(record, query, int(cursor.split("-")[0])):
                    records.append(record)
                    if len(records) == limit:
                        return records, cursor
            high = f"({cursor}"
        return records, cursor


class ArchiveFailed(Exception):
    """The audit file could not be written; the records stay pending in the stream and are retried."""


class AuditArchiver:
    """Copies the audit stream to an append-only JSON-lines file, each record once (consumer group)."""

    def __init__(self, client: redis.Redis, path: str, *, on_failure: Callable[[], None] = lambda: None,
                 offload: Callable[[Callable[[], None]], None] = lambda work: work()) -> None:
        """offload(work) runs the blocking file write (the API passes gevent's thread pool: an fsync must
        not stall the requests its process serves)."""
        self._redis = client
        self._path = path
        self._on_failure = on_failure
        self._offload = offload
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._stop = threading.Event()

    def _ensure_group(self) -> None:
        try:
            self._redis.xgroup_create(keys.AUDIT_STREAM, ARCHIVE_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _write(self, entries: list[tuple[Any, dict[Any, Any]]]) -> None:
        lines = [json.dumps(_entry_record(entry_id, fields), separators=(",", ":")) + "\n"
                 for entry_id, fields in entries]
        os.makedirs(os.path.dirname(self._path) or ".", exist_ok=True)
        # One write of whole lines with O_APPEND: several archivers may share the file without interleaving.
        fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            data = "".join(lines).encode()
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def archive_once(self, *, block_ms: int | None = ARCHIVE_BLOCK_MS, recover: bool = True) -> int:
        """Move one batch to the file: with recover, this consumer's unacknowledged records first (a previous
        failure), then records a dead consumer left behind; then new ones. Returns how many were written."""
        if recover:
            self._ensure_group()
            streams: dict[Any, Any] = {keys.AUDIT_STREAM: "0"}
            reply = cast(list[Any], self._redis.xreadgroup(ARCHIVE_GROUP, self._consumer, streams,
                                                           count=ARCHIVE_BATCH))
            entries = reply[0][1] if reply else []
        else:
            entries = []
        if not entries and recover:
            claimed = cast(list[Any], self._redis.xautoclaim(keys.AUDIT_STREAM, ARCHIVE_GROUP, self._consumer,
                                                            ARCHIVE_RECLAIM_MS, count=ARCHIVE_BATCH))
            entries = claimed[1] if claimed else []
        if not entries:
            reply = cast(list[Any], self._redis.xreadgroup(ARCHIVE_GROUP, self._consumer, {keys.AUDIT_STREAM: ">"},
                                                           count=ARCHIVE_BATCH, block=block_ms))
            entries = reply[0][1] if reply else []
        entries = [(entry_id, fields) for entry_id, fields in entries if fields]  # trimmed meanwhile
        if not entries:
            return 0
        try:
            self._offload(lambda: self._write(entries))
        except OSError as exc:
            self._on_failure()
            raise ArchiveFailed(f"cannot append to {self._path}: {exc}") from exc
        self._redis.xack(keys.AUDIT_STREAM, ARCHIVE_GROUP, *[entry_id for entry_id, _ in entries])
        return len(entries)

    def run(self) -> None:
        """Archive until stop(); Redis or file trouble is logged and retried. Left-over records (its own
        unacknowledged ones, a dead consumer's) are looked for at the start, after a failure and every
        ARCHIVE_RECLAIM_MS; in between, each round reads only new records."""
        recover_at = 0.0
        while not self._stop.is_set():
            try:
                recover = time.monotonic() >= recover_at
                if recover:
                    recover_at = time.monotonic() + ARCHIVE_RECLAIM_MS / 1000
                written = self.archive_once(recover=recover)
                if 0 < written < ARCHIVE_BATCH:
                    self._stop.wait(ARCHIVE_LINGER_S)
            except ArchiveFailed as exc:
                log.error("audit archiver: %s (retrying)", exc)
                recover_at = 0.0
                self._stop.wait(RETRY_S)
            except redis.RedisError as exc:
                log.warning("audit archiver: redis unavailable (%s); retrying", exc)
                recover_at = 0.0
                self._stop.wait(RETRY_S)

    def stop(self) -> None:
        self._stop.set()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="audit-archiver", daemon=True)
        thread.start()
        return thread
