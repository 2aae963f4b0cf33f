"""Execution endpoints: /execute, /execute/stream and /jobs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context
from marshmallow import Schema

from api import metrics, sse
from api.apidoc import Param, Reply, documented
from api.auth import current_key_id, current_tenant
from api.context import load_body
from api.context import services as current_services
from api.schemas import (
    DisplaySchema,
    ExecutionResultSchema,
    JobAcceptedSchema,
    JobCancelledSchema,
    JobSchema,
    OutputEventSchema,
    PlotSchema,
    QueuedEventSchema,
    ResourceSampleSchema,
    StartedEventSchema,
    execute_request_schema,
)
from api.services import Services
from core import keys
from core.errors import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PolicyViolation,
    Unavailable,
    ValidationFailed,
)
from core.ids import is_id
from core.jobs import JobEvent, JobRecord
from core.ledger import OverBudget
from core.models import EventType, ExecutionRequest, JobStatus
from core.reaper import reap
from core.session_files import check_pattern, input_files
from core.sessions import SessionRecord
from core.settings import Settings

bp = Blueprint("executions", __name__, url_prefix="/api/v1")

READ_BLOCK_MS = 1000
KEEPALIVE_S = 15.0
# How long DELETE /jobs/{id} waits for the worker to end a running job before the service ends it.
CANCEL_WAIT_MS = 3000
# A synchronous /execute waits this long beyond the job's own timeout (queue wait) before answering 202
# with where to follow the job.
SYNC_EXTRA_WAIT_S = 120.0

# The SSE events of a job's stream (the `event:` names) and the schema of each one's JSON `data:`.
JOB_EVENTS = {
    EventType.QUEUED.value: QueuedEventSchema,
    EventType.STARTED.value: StartedEventSchema,
    EventType.STDOUT.value: OutputEventSchema,
    EventType.STDERR.value: OutputEventSchema,
    EventType.PLOT.value: PlotSchema,
    EventType.DISPLAY.value: DisplaySchema,
    EventType.METRICS.value: ResourceSampleSchema,
    EventType.RESULT.value: ExecutionResultSchema,
}
_EVENTS_DESCRIPTION = ("the job's events, each with an `id:`; the stream ends after `result`, whose data is the "
                       "ExecutionResult. A `: keepalive` comment comes every 15 s of silence.")
_LOCATION = {"Location": "/api/v1/jobs/{jobId}: where to follow the job"}
# Where an accepted job's id leads (OpenAPI links, which also let schemathesis follow real jobs).
_JOB_LINKS = {"GetJob": ("get_job", "job_id", "$response.body#/jobId"),
              "JobEvents": ("job_events", "job_id", "$response.body#/jobId"),
              "CancelJob": ("cancel_job", "job_id", "$response.body#/jobId")}
_STREAM_ID = {"type": "string", "pattern": sse.STREAM_ID_PATTERN}
_EXAMPLE = {"code": "import math\nprint(math.pi)\nmath.e", "timeout": 5000}
# What submitting a job may be refused with (besides what every body and every route may be).
_SUBMIT_ERRORS = (Forbidden, NotFound, Conflict, PolicyViolation, Overloaded, Unavailable)


def _execute_body(settings: Settings) -> Schema:
    return execute_request_schema(max_timeout_ms=settings.max_execution_time)


def _parse_request(services: Services) -> ExecutionRequest:
    settings = services.settings
    data = load_body(execute_request_schema(max_timeout_ms=settings.max_execution_time))
    code_bytes = len(data["code"].encode())
    if code_bytes > settings.max_code_bytes:
        raise PayloadTooLarge(f"code is {code_bytes} bytes; the limit is {settings.max_code_bytes}",
                              details={"codeBytes": code_bytes, "maxCodeBytes": settings.max_code_bytes})
    packages = check_packages(services, data["packages"] or [])
    analysis = services.analyzer.analyze(data["code"])
    if data["strict"] and not analysis.valid:
        raise PolicyViolation("the code breaks the policy (strict mode)", details=analysis.to_api())
    findings = tuple(asdict(f) for f in (*analysis.errors, *analysis.warnings))
    return ExecutionRequest(code=data["code"], timeout_ms=data["timeout"] or settings.job_timeout_default_ms,
                            variables=data["variables"], session_id=data["sessionId"], tenant=current_tenant(),
                            key_id=current_key_id(), plot_formats=tuple(dict.fromkeys(data["plotFormats"])),
                            packages=tuple(packages), findings=findings, stdin=data["stdin"],
                            files=input_files(data["files"], max_file_bytes=settings.max_file_size_bytes),
                            output_files=tuple(check_pattern(p) for p in data["outputFiles"]))


def check_packages(services: Services, specs: list[str]) -> list[str]:
    """The requested packages if the allowlist admits every one; else 400 naming each refusal."""
    failed = []
    for spec in specs:
        requirement, reason = services.packages.check(spec)
        if reason:
            failed.append({"name": requirement.name if requirement else spec, "reason": reason})
    if failed:
        raise ValidationFailed("some packages may not be installed", details={"packages": failed})
    return specs


def owned_session(services: Services, session_id: str) -> SessionRecord:
    """The caller's session (404 if malformed, unknown or another tenant's), marked lost first if its owner
    died. The tenant is checked before the record is read."""
    if not is_id(session_id) or services.sessions.tenant_of(session_id) != current_tenant():
        raise NotFound(f"no session {session_id}", details={"sessionId": session_id})
    record = services.sessions.get(session_id)
    if record is None or record.tenant != current_tenant():
        raise NotFound(f"no session {session_id}", details={"sessionId": session_id})
    if record.status.is_live and record.worker not in services.admission.alive_workers():
        reap_if_lost(services)
        record = services.sessions.get(session_id) or record
    return record


def live_session(services: Services, session_id: str) -> SessionRecord:
    """The caller's session if it can run code: 404 if unknown, 409 if lost or expired."""
    record = owned_session(services, session_id)
    if not record.status.is_live:
        raise Conflict(f"session {session_id} is {record.status.value}; create a new one",
                       details={"sessionId": session_id, "status": record.status.value})
    return record


def submit(services: Services, execution: ExecutionRequest) -> tuple[str, JobEvent]:
    """Accept a job: store it, then route it (shared queue, or its session's owner); returns (id, queued).

    The job's isolation tier is the service's choice, never the request's: its tenant's (TENANT_ISOLATION,
    SANDBOX_RUNTIME), or a session's job its session's."""
    session = live_session(services, execution.session_id) if execution.session_id else None
    tier = services.settings.tier_of(execution.tenant).value
    if session is not None and session.isolation != tier:
        # The operator moved the tenant to another tier since the session was made: it runs nothing more.
        raise Conflict(f"session {session.session_id} runs on the {session.isolation} tier and tenant "
                       f"{execution.tenant}'s tier is now {tier}; create a new session",
                       details={"sessionId": session.session_id, "isolation": session.isolation, "tier": tier})
    execution = replace(execution, isolation=tier)
    if session is None:
        services.admission.check()
    job_id = uuid.uuid4().hex
    quota = services.tenants.quota(execution.tenant)
    try:
        queued = services.store.create(job_id, execution, max_active=quota.max_active_jobs)
    except OverBudget as over:
        raise Overloaded(f"tenant {execution.tenant}'s jobs hold {over.used} bytes in Redis; this one would pass "
                         f"its limit of {over.budget} (TENANT_MAX_STORED_BYTES) until older jobs expire "
                         f"(JOB_RETENTION_SECONDS after they ended)", retry_after_s=over.retry_after_s,
                         details={"storedBytes": over.used, "maxStoredBytes": over.budget}) from None
    if queued is None:
        raise Overloaded(f"tenant {execution.tenant} already has {quota.max_active_jobs} jobs queued or running; "
                         "try again when one ends", retry_after_s=2,
                         details={"maxActiveJobs": quota.max_active_jobs})
    try:
        queued_in_session = session is None or services.sessions.push_job(session.session_id, job_id)
        if session is None:
            # The job waits in its tenant's list; the message is a doorbell without arguments (core.fair_queue).
            services.fair_queue.push(execution.tenant, job_id)
            services.dispatcher.send(keys.EXECUTE_TASK, [], keys.SHARED_QUEUE)
        elif queued_in_session:
            services.dispatcher.send(keys.SESSION_KICK_TASK, [session.session_id], keys.host_queue(session.worker))
    except Exception as exc:  # the broker is unreachable: the job was not accepted
        _not_run(services, job_id, "Unavailable", "the job could not be queued")
        raise Unavailable("the job queue is unreachable", retry_after_s=5) from exc
    if session is not None and not queued_in_session:  # the session ended since live_session() looked
        _not_run(services, job_id, "SessionGone", "the session ended before the job was queued")
        raise ended_session_error(services, session.session_id) or Conflict(
            f"session {session.session_id} ended; create a new one", details={"sessionId": session.session_id})
    metrics.JOBS_SUBMITTED.labels("session" if session else "stateless").inc()
    return job_id, queued


def _not_run(services: Services, job_id: str, error_type: str, message: str) -> None:
    record = services.store.get(job_id)
    if record is not None:
        services.store.finish_without_running(record, JobStatus.WORKER_LOST, error={
            "type": error_type, "message": message, "traceback": []})


def ended_session_error(services: Services, session_id: str) -> ApiError | None:
    """404 if the session is gone (deleted), 409 if it is lost or expired; None while it is live."""
    record = services.sessions.get(session_id)
    if record is None or record.tenant != current_tenant():
        return NotFound(f"no session {session_id}", details={"sessionId": session_id})
    if not record.status.is_live:
        return Conflict(f"session {session_id} is {record.status.value}; create a new one",
                        details={"sessionId": session_id, "status": record.status.value})
    return None


def _submit(services: Services) -> tuple[str, ExecutionRequest, JobEvent]:
    execution = _parse_request(services)
    job_id, queued = submit(services, execution)
    return job_id, execution, queued


def reap_if_lost(services: Services) -> None:
    """End jobs and sessions whose worker died (see core.reaper)."""
    reap(services.registry, services.store, services.sessions)


def _events(services: Services, job_id: str, after: str) -> Iterator[JobEvent | None]:
    """A job's events after `after`, until and including `result`; None items mark idle seconds."""
    last = after
    block_ms: int | None = None  # the first read does not wait: a resume after `result` ends at once
    while True:
        events = services.store.read_events(job_id, after=last, block_ms=block_ms)
        block_ms = READ_BLOCK_MS
        if not events:
            record = services.store.get(job_id)
            if record is None:
                return  # expired
            if record.status.is_final:
                # Final: its result event exists. Read again, since it may have been added just after our
                # read; nothing after `last` means the result was delivered before (a resume after it).
                events = services.store.read_events(job_id, after=last)
                if not events:
                    return
            else:
                yield None
                continue
        for event in events:
            last = event.event_id
            yield event
            if event.type is EventType.RESULT:
                return


class StillRunning(Exception):
    """The job was accepted but has not ended within the wait; the client follows it by id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def wait_for_result(services: Services, job_id: str, timeout_ms: int) -> dict[str, Any]:
    """Block until the job's result event; its data (the ExecutionResult in API form)."""
    deadline = time.monotonic() + timeout_ms / 1000 + SYNC_EXTRA_WAIT_S
    for event in _events(services, job_id, "0-0"):
        if event is not None and event.type is EventType.RESULT:
            return event.data
        if event is None:
            reap_if_lost(services)
            if time.monotonic() > deadline:
                raise StillRunning(job_id)
    raise StillRunning(job_id)  # its events expired before a result: GET /jobs/{id} tells the rest


@bp.post("/execute")
@documented(tag="executions", body=_execute_body, example=_EXAMPLE, errors=_SUBMIT_ERRORS, ok=(
    Reply(200, "the ExecutionResult (also when the code raised: its status says how it ended)",
          ExecutionResultSchema),
    Reply(202, "accepted but not ended within its timeout plus 120 s of queueing: follow it by id",
          JobAcceptedSchema, headers=_LOCATION, links=_JOB_LINKS)))
def execute() -> Response:
    """Run code and answer with its ExecutionResult once it ends."""
    services = current_services()
    job_id, execution, _ = _submit(services)
    try:
        return jsonify(wait_for_result(services, job_id, execution.timeout_ms))
    except StillRunning:
        # Accepted, not ended yet (a long queue): 202 with where to follow it, never a retryable error.
        record = services.store.get(job_id)
        response = jsonify({"jobId": job_id, "status": record.status.value if record else "queued"})
        response.status_code = 202
        response.headers["Location"] = f"/api/v1/jobs/{job_id}"
        return response


def _sse_response(services: Services, job_id: str, after: str) -> Response:
    def generate() -> Iterator[bytes]:
        idle_since = time.monotonic()
        metrics.SSE_CLIENTS.inc()
        try:
            yield from relay(idle_since)
        finally:
            metrics.SSE_CLIENTS.dec()

    def relay(idle_since: float) -> Iterator[bytes]:
        for event in _events(services, job_id, after):
            if event is None:
                reap_if_lost(services)
                if time.monotonic() - idle_since >= KEEPALIVE_S:
                    idle_since = time.monotonic()
                    yield sse.KEEPALIVE
                continue
            idle_since = time.monotonic()
            yield sse.format_event(event.event_id, event.type.value, event.data)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(stream_with_context(generate()), mimetype="text/event-stream", headers=headers)


@bp.post("/execute/stream")
@documented(tag="executions", body=_execute_body, example=_EXAMPLE, errors=_SUBMIT_ERRORS,
            ok=Reply(200, _EVENTS_DESCRIPTION, events=JOB_EVENTS, events_name="JobEvent"))
def execute_stream() -> Response:
    """Run code and stream its events (queued, started, stdout, stderr, plot, display, metrics, result) as SSE."""
    services = current_services()
    job_id, _, _ = _submit(services)
    return _sse_response(services, job_id, "0-0")


@bp.post("/jobs")
@documented(tag="jobs", body=_execute_body, example=_EXAMPLE, errors=_SUBMIT_ERRORS,
            ok=Reply(202, "queued", JobAcceptedSchema, headers=_LOCATION, links=_JOB_LINKS))
def create_job() -> tuple[Response, int]:
    """Queue code to run; answer at once with the job id."""
    services = current_services()
    job_id, _, _ = _submit(services)
    response = jsonify({"jobId": job_id, "status": JobStatus.QUEUED.value})
    response.headers["Location"] = f"/api/v1/jobs/{job_id}"
    return response, 202


def owned_job(services: Services, job_id: str) -> JobRecord:
    """The caller's job; 404 if malformed, unknown, expired or another tenant's (never their data, never 403).
    The tenant is checked first, alone: another tenant's record (its result may be large) is never loaded."""
    if not is_id(job_id) or services.store.tenant_of(job_id) != current_tenant():
        raise NotFound(f"no job {job_id}", details={"jobId": job_id})
    record = services.store.get(job_id)
    if record is None or record.request.tenant != current_tenant():
        raise NotFound(f"no job {job_id}", details={"jobId": job_id})
    return record


def _job_view(services: Services, job_id: str) -> dict[str, Any]:
    record = owned_job(services, job_id)
    if record.status is JobStatus.RUNNING and record.worker not in services.admission.alive_workers():
        reap_if_lost(services)  # its worker died: end it worker_lost now rather than report `running`
        record = services.store.get(job_id) or record
    view: dict[str, Any] = {"jobId": job_id, "status": record.status.value, "worker": record.worker,
                            "isolation": record.result.isolation if record.result is not None else None}
    if record.result is not None:
        view["result"] = record.result.to_api()
    return view


@bp.get("/jobs/<id:job_id>")
@documented(tag="jobs", errors=(Forbidden, NotFound), ok=Reply(200, "the job", JobSchema))
def get_job(job_id: str) -> Response:
    """Where the job is, and its ExecutionResult once final."""
    return jsonify(_job_view(current_services(), job_id))


@bp.get("/jobs/<id:job_id>/events")
@documented(tag="jobs", errors=(ValidationFailed, Forbidden, NotFound), params=(
    Param("Last-Event-ID", "header", "resume after this event id (as EventSource sends it on a reconnect)",
          _STREAM_ID),
    Param("lastEventId", "query", "the same as the Last-Event-ID header, for clients that cannot set it",
          _STREAM_ID)),
    ok=Reply(200, _EVENTS_DESCRIPTION, events=JOB_EVENTS, events_name="JobEvent"))
def job_events(job_id: str) -> Response:
    """The job's events as SSE; Last-Event-ID (header or ?lastEventId=) resumes after that event."""
    services = current_services()
    header, query = request.headers.get("Last-Event-ID"), request.args.get("lastEventId")
    from_query = sse.parse_last_event_id(query)  # checked even when the header wins: a bad one is a 400
    after = sse.parse_last_event_id(header) if header else from_query
    owned_job(services, job_id)
    return _sse_response(services, job_id, after)


@bp.delete("/jobs/<id:job_id>")
@documented(tag="jobs", errors=(Forbidden, NotFound, Conflict),
            ok=Reply(202, "cancelled, or (cancelRequested) was running and has been stopped", JobCancelledSchema))
def cancel_job(job_id: str) -> tuple[Response, int]:
    """Cancel a job: a queued one never runs, a running one is killed."""
    services = current_services()
    owned_job(services, job_id)
    status = services.store.cancel(job_id)
    if status is None:
        raise NotFound(f"no job {job_id}", details={"jobId": job_id})
    if status.is_final and status is not JobStatus.CANCELLED:
        raise Conflict(f"job {job_id} already ended ({status.value})",
                       details={"jobId": job_id, "status": status.value})
    if status.is_final:
        return jsonify({"jobId": job_id, "status": status.value}), 202
    # Running: its worker kills it now. If the worker does not end it in time (it is stuck, or our own
    # machinery failed), the service ends it itself: a cancelled job always ends within seconds.
    final = services.store.await_final(job_id, CANCEL_WAIT_MS)
    if final is None:
        record = services.store.get(job_id)
        if record is not None:
            services.store.finish_without_running(record, JobStatus.CANCELLED, error={
                "type": "Cancelled", "traceback": [],
                "message": "cancelled; its worker did not stop it in time, so the service ended it"})
        final = services.store.await_final(job_id, 0)
    return jsonify({"jobId": job_id, "status": (final or status).value, "cancelRequested": True}), 202
