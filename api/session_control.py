"""Session control: interrupt the running execution, restart the interpreter; and the helper that runs
a session operation (restart, a file operation) as a job of the session, in order with its executions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from api.apidoc import Reply, documented
from api.auth import current_key_id, current_tenant
from api.context import services as current_services
from api.executions import CANCEL_WAIT_MS, StillRunning, live_session, owned_session, submit, wait_for_result
from api.schemas import InterruptSchema, SessionSchema
from api.services import Services
from core.errors import Conflict, Forbidden, NotFound, Overloaded, PayloadTooLarge, Unavailable, ValidationFailed
from core.models import ExecutionRequest, JobStatus
from core.session_files import TRANSFER_LIMIT, SessionOp

bp = Blueprint("session_control", __name__, url_prefix="/api/v1")

# The bound the reaper holds a session operation to (a 10 MiB file moves in well under a second).
SESSION_OP_TIMEOUT_MS = 60_000


def run_session_op(services: Services, session_id: str, op: dict[str, Any]) -> dict[str, Any]:
    """Queue op as a job of the caller's live session, wait for it, and return its result's `json` data;
    a refusal becomes the API error it stands for (400 path, 404 file, 413 size, 409 ended session)."""
    live_session(services, session_id)
    job_id, _ = submit(services, ExecutionRequest(code="", timeout_ms=SESSION_OP_TIMEOUT_MS, session_id=session_id,
                                                  tenant=current_tenant(), key_id=current_key_id(), session_op=op))
    try:
        result = wait_for_result(services, job_id, SESSION_OP_TIMEOUT_MS)
    except StillRunning:
        raise Unavailable("the session did not get to the operation in time", retry_after_s=5,
                          details={"jobId": job_id}) from None
    if result["status"] == JobStatus.SUCCESS.value:
        value = result.get("result") or {}
        return {"jobId": job_id, **(value.get("json") or {})}
    error = result.get("error") or {}
    details = {"jobId": job_id, **((result.get("result") or {}).get("json") or {})}
    message, kind = str(error.get("message", "")), error.get("type")
    if kind == "InvalidPath":
        raise ValidationFailed(message, details=details)
    if kind == "FileNotFound":
        raise NotFound(message, details=details)
    if kind in ("StorageLimit", "FileTooLarge"):
        raise PayloadTooLarge(message, details=details)
    if kind == "FileError":
        raise Conflict(message, details=details)
    if kind == TRANSFER_LIMIT:
        raise Overloaded(message, retry_after_s=5, details=details)
    raise Unavailable(f"the operation did not complete ({result['status']}: {message})", retry_after_s=5,
                      details=details)


@bp.post("/sessions/<id:session_id>/interrupt")
@documented(tag="sessions", errors=(Forbidden, NotFound, Conflict),
            ok=Reply(200, "what was interrupted", InterruptSchema))
def interrupt_session(session_id: str) -> Response:
    """Stop the session's running execution with KeyboardInterrupt, keeping its namespace (as a notebook's
    interrupt does). One sent just before is stopped too, before or as it starts; queued ones still run."""
    services = current_services()
    live_session(services, session_id)
    job_id = services.sessions.interrupt_target(session_id)
    if job_id is None:
        return jsonify({"sessionId": session_id, "interrupted": None})
    status = services.store.cancel(job_id)
    final = services.store.await_final(job_id, CANCEL_WAIT_MS) if status and not status.is_final else status
    if final is None:  # the worker did not end it in time: the service does (as DELETE /jobs/{id} does)
        record = services.store.get(job_id)
        if record is not None:
            services.store.finish_without_running(record, JobStatus.CANCELLED, error={
                "type": "Cancelled", "traceback": [],
                "message": "interrupted; its worker did not stop it in time, so the service ended it"})
        final = services.store.await_final(job_id, 0)
    record = services.store.get(job_id)
    state = record.result.session_state if record is not None and record.result is not None else None
    return jsonify({"sessionId": session_id, "interrupted": job_id, "status": final.value if final else None,
                    "sessionState": state})


@bp.post("/sessions/<id:session_id>/restart")
@documented(tag="sessions", errors=(Forbidden, NotFound, Conflict, Overloaded),
            ok=Reply(200, "the session with its new interpreter", SessionSchema))
def restart_session(session_id: str) -> Response:
    """Replace the session's interpreter (variables gone; files and installed packages kept; same id),
    after the executions sent before it; answers the new session view."""
    services = current_services()
    run_session_op(services, session_id, {"op": SessionOp.RESTART.value})
    return jsonify(owned_session(services, session_id).to_api())
