"""Session endpoints: create, list, inspect, set variables, delete."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, cast

import redis
from flask import Blueprint, Response, after_this_request, jsonify, request

from api.apidoc import Reply, documented
from api.auth import current_key_id, current_tenant
from api.context import load_body
from api.context import services as current_services
from api.executions import (
    StillRunning,
    check_packages,
    ended_session_error,
    live_session,
    owned_session,
    submit,
    wait_for_result,
)
from api.schemas import (
    SessionCreatedSchema,
    SessionCreateSchema,
    SessionListSchema,
    SessionSchema,
    SessionVariablesSchema,
    VariablesSchema,
)
from api.services import Services
from core import keys, session_audit
from core.errors import Conflict, Forbidden, NotFound, Overloaded, Unavailable, ValidationFailed
from core.isolation import Tier
from core.jobs import now_ms
from core.models import ExecutionRequest, SessionStatus
from core.session_setup import SessionSetup
from core.sessions import Reservation

log = logging.getLogger(__name__)

bp = Blueprint("sessions", __name__, url_prefix="/api/v1")

CREATE_WAIT_S = 30
SETUP_TIMEOUT_MS = 10_000


def _reserve_on_a_host(services: Services, session_id: str, isolation: str) -> str:
    """Reserve a slot for a session of tier isolation on the live host with the most free ones (atomically);
    429 when all are full. Every host serves every configured tier; one whose heartbeat does not list the tier
    (its settings differ, during a change of them) is passed over rather than asked to refuse."""
    workers = services.registry.alive()  # fresh: a session must not be placed on a host that just died
    if not workers:
        raise Unavailable("no worker is running; try again shortly", retry_after_s=5)
    workers = {name: info for name, info in workers.items()
               if isolation in (info.get("tiers") or {Tier.RUNC.value: None})}  # a host from before tiers: runc
    if not workers:
        raise Unavailable(f"no live worker host serves the {isolation} isolation tier; try again shortly",
                          retry_after_s=5, details={"isolation": isolation})
    free = {name: int(info.get("maxSessions", 0)) - services.sessions.count_of_worker(name)
            for name, info in workers.items()}
    tenant = current_tenant()
    quota = services.tenants.quota(tenant)
    for name in sorted(free, key=lambda n: (-free[n], n)):
        if free[name] <= 0:
            continue
        reservation = services.sessions.reserve(
            session_id, tenant=tenant, worker=name, max_sessions=int(workers[name]["maxSessions"]),
            idle_timeout_ms=services.settings.session_idle_timeout, max_tenant_sessions=quota.max_sessions,
            isolation=isolation)
        if reservation is Reservation.RESERVED:
            return name
        if reservation is Reservation.TENANT_FULL:
            raise Overloaded(f"tenant {tenant} already has its maximum of {quota.max_sessions} sessions; delete one "
                             "or try again later", retry_after_s=10, details={"maxSessions": quota.max_sessions})
    raise Overloaded("every worker host has its maximum of sessions; try again later", retry_after_s=10,
                     details={"hosts": len(workers)})


@bp.post("/sessions")
@documented(tag="sessions", body=SessionCreateSchema, body_required=False,
            example={"packages": [], "variables": {"rows": [1, 2, 3]}},
            errors=(Forbidden, NotFound, Overloaded, Unavailable),
            ok=Reply(201, "created and ready", SessionCreatedSchema,
                     headers={"Location": "/api/v1/sessions/{sessionId}"}, links={
                         "GetSession": ("get_session", "session_id", "$response.body#/sessionId"),
                         "SetVariables": ("set_variables", "session_id", "$response.body#/sessionId"),
                         "DeleteSession": ("delete_session", "session_id", "$response.body#/sessionId")}))
def create_session() -> tuple[Response, int]:
    """Create a session on the least loaded worker host, from its warm pool."""
    services = current_services()
    data = load_body(SessionCreateSchema()) if _has_body() else {"packages": None, "variables": {}}
    packages = check_packages(services, data["packages"] or [])
    session_id = uuid.uuid4().hex
    isolation = services.settings.tier_of(current_tenant()).value
    audit = _audit_creation(services, session_id, data["variables"], packages, isolation)
    worker = audit["worker"] = _reserve_on_a_host(services, session_id, isolation)
    # Only the id goes on the broker; the owner reads the variables, packages and tier from Redis.
    services.session_setups.put(session_id, SessionSetup(variables=data["variables"], packages=packages,
                                                         isolation=isolation))
    services.dispatcher.send(keys.SESSION_CREATE_TASK, [session_id], keys.host_queue(worker))
    reply = cast(list[bytes] | None, services.redis.blpop([keys.session_created_key(session_id)],
                                                            timeout=CREATE_WAIT_S))
    if reply is None:
        services.session_setups.discard(session_id)
        services.sessions.delete(session_id)
        raise Unavailable(f"worker {worker} did not start the session in time", retry_after_s=5)
    answer = json.loads(reply[1])
    if not answer["ok"]:
        services.sessions.delete(session_id)
        if answer.get("reason") == "full":
            raise Overloaded("the chosen worker host is full; try again", retry_after_s=1)
        if str(answer.get("reason", "")).startswith("packages could not be installed"):
            raise ValidationFailed(answer["reason"], details={"packages": packages})
        raise Unavailable(f"the session could not be started: {answer.get('reason')}", retry_after_s=5)
    record = services.sessions.get(session_id)
    if record is None:
        raise NotFound(f"session {session_id} vanished while starting")
    view = record.to_api()
    response = jsonify({key: view[key] for key in ("sessionId", "createdAt", "expiresAt", "worker", "status",
                                                   "isolation")})
    response.headers["Location"] = f"/api/v1/sessions/{session_id}"
    return response, 201


def _audit_creation(services: Services, session_id: str, variables: dict[str, Any],
                    packages: list[str], isolation: str) -> dict[str, str | None]:
    """Audit this session create with its outcome once the response is made (created or refused, whatever
    raised): variables by name and size only. Returns where the route notes the worker it chose."""
    noted: dict[str, str | None] = {"worker": None}
    tenant, key_id = current_tenant(), current_key_id()

    @after_this_request
    def _record(response: Response) -> Response:
        record = session_audit.creation_record(session_id, tenant=tenant, key_id=key_id, at_ms=now_ms(),
                                               http_status=response.status_code, worker=noted["worker"],
                                               variables=variables, packages=packages, isolation=isolation)
        try:
            session_audit.append(services.redis, record, maxlen=services.settings.audit_stream_maxlen)
        except redis.RedisError:
            log.exception("session %s: its audit record could not be written", session_id)
        return response

    return noted


def _has_body() -> bool:
    return bool(request.get_data(cache=True))


@bp.get("/sessions")
@documented(tag="sessions", errors=(Forbidden,), ok=Reply(200, "the caller's sessions", SessionListSchema))
def list_sessions() -> Response:
    """The caller's sessions (live, and ended ones still retained)."""
    services = current_services()
    views = []
    for session_id in services.sessions.ids_of_tenant(current_tenant()):
        record = services.sessions.get(session_id)
        if record is not None:
            views.append(record.to_api())
    return jsonify({"sessions": views})


@bp.get("/sessions/<id:session_id>")
@documented(tag="sessions", errors=(Forbidden, NotFound), ok=Reply(200, "the session", SessionSchema))
def get_session(session_id: str) -> Response:
    """The session's status, timestamps, execution count, variables and current resource use."""
    return jsonify(owned_session(current_services(), session_id).to_api())


@bp.put("/sessions/<id:session_id>/variables")
@documented(tag="sessions", body=SessionVariablesSchema, example={"variables": {"threshold": 0.5}},
            errors=(Forbidden, NotFound, Conflict, Overloaded, Unavailable),
            ok=Reply(200, "the session's variables after the change", VariablesSchema))
def set_variables(session_id: str) -> Response:
    """Set JSON values in the session's namespace (in order with its executions); the new summary."""
    services = current_services()
    data = load_body(SessionVariablesSchema())
    live_session(services, session_id)
    job_id, _ = submit(services, ExecutionRequest(code="", timeout_ms=SETUP_TIMEOUT_MS, variables=data["variables"],
                                                  session_id=session_id, tenant=current_tenant(),
                                                  key_id=current_key_id()))
    try:
        result = wait_for_result(services, job_id, SETUP_TIMEOUT_MS)
    except StillRunning:
        raise Unavailable("the session did not get to the variables in time", retry_after_s=5) from None
    if result["status"] != "success":  # the session ended meanwhile (deleted: 404, lost: 409), or our machinery
        raise ended_session_error(services, session_id) or Unavailable(
            f"the variables could not be set: {result['status']}", retry_after_s=5, details={"result": result})
    return jsonify({"variables": result["variables"]})


@bp.delete("/sessions/<id:session_id>")
@documented(tag="sessions", errors=(Forbidden, NotFound), ok=Reply(204, "deleted"))
def delete_session(session_id: str) -> tuple[str, int]:
    """Delete the session: its sandbox is destroyed at once; later use is 404."""
    services = current_services()
    record = owned_session(services, session_id)
    services.sessions.delete(session_id)
    if record.status in (SessionStatus.READY, SessionStatus.BUSY, SessionStatus.STARTING):
        services.dispatcher.send(keys.SESSION_DELETE_TASK, [session_id], keys.host_queue(record.worker))
    try:  # after the sandbox is on its way out: a failed audit write must not keep it running
        session_audit.append(services.redis, session_audit.deletion_record(
            session_id, tenant=record.tenant, key_id=current_key_id(), at_ms=now_ms(), worker=record.worker,
            previous_status=record.status.value, isolation=record.isolation),
            maxlen=services.settings.audit_stream_maxlen)
    except redis.RedisError:
        log.exception("session %s: its deletion's audit record could not be written", session_id)
    return "", 204
