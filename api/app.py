"""The Flask app factory and the one error handler that renders the JSON envelope."""

from __future__ import annotations

import logging
import time
from typing import Any

import psutil
import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from api import limits, metrics
from api.audit import bp as audit_bp
from api.auth import authenticate
from api.cors import install as install_cors
from api.docs import api_bp as meta_bp
from api.docs import page_bp as docs_page_bp
from api.executions import bp as executions_bp
from api.ids import FilePathConverter, IdConverter
from api.openapi import API_VERSION, package_version
from api.packages import bp as packages_bp
from api.playground import bp as playground_bp
from api.services import Dispatcher, Services
from api.session_control import bp as session_control_bp
from api.session_files import bp as session_files_bp
from api.sessions import bp as sessions_bp
from api.validation import bp as validation_bp
from core.errors import ApiError, PayloadTooLarge, Unauthorized, Unavailable
from core.settings import Settings

log = logging.getLogger(__name__)

# The body may hold code (max_code_bytes) plus variables; the code limit itself is checked per field.
BODY_OVERHEAD_BYTES = 1024 * 1024
# On every response. The API answers JSON, SSE and Prometheus text: nothing of it may be sniffed into HTML,
# run as a page's script, framed, or leak the URL (job ids) to another site.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# A response that sets no Content-Security-Policy of its own gets this one: no content of any kind. A page the
# API serves (/docs, a playground) sets its own, allowing only its own assets ('self'), no inline script.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


def _error_response(error: ApiError) -> tuple[Response, int]:
    response = jsonify(error.to_envelope())
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="penny"'
    return response, error.http_status


def health_report(services: Services) -> tuple[Response, int]:
    """The /health body and status code."""
    body: dict[str, Any] = {"status": "healthy", "uptime": int(time.time() - services.started_at),
                            "version": package_version(), "apiVersion": API_VERSION}
    body["system"] = {"memory": psutil.virtual_memory().percent, "cpu": psutil.cpu_percent(interval=None),
                      "disk": psutil.disk_usage("/").percent}
    try:
        workers = services.registry.alive()
        missing = services.registry.missing(workers)
        depth = services.admission.queue_depth()
        created = services.sessions.created_total()
    except redis.RedisError:
        body.update(status="unhealthy", reason="redis unreachable", workers=[], sessions={"active": 0, "total": 0})
        return jsonify(body), 503
    body["sessions"] = {"active": sum(int(w.get("sessions", 0)) for w in workers.values()), "total": created}
    body["queue"] = {"depth": depth, "maxDepth": services.settings.max_queue_depth}
    body["workers"] = [{
        "name": name,
        "lastHeartbeat": info.get("heartbeatMs"),
        "pool": info.get("pool", {}),
        "sessionPool": info.get("sessionPool", {}),
        "tiers": info.get("tiers", {}),
        "sessions": info.get("sessions", 0),
        "poolError": info.get("poolError"),
    } for name, info in sorted(workers.items())]
    body["missingWorkers"] = [{"name": name, "lastHeartbeat": at} for name, at in sorted(missing.items())]
    reasons = []
    if not workers:
        body.update(status="unhealthy", reason="no worker is running")
        return jsonify(body), 503
    if missing:
        reasons.append(f"{len(missing)} worker(s) stopped sending heartbeats")
    if sum(int(w.get("pool", {}).get("idle", 0)) for w in workers.values()) == 0:
        reasons.append("no idle sandbox in any pool")
    if reasons:
        body.update(status="degraded", reason="; ".join(reasons))
    return jsonify(body), 200


# Redis refusing writes for now, not a command of ours that is wrong: out of its memory limit (OOM, also
# inside a script) or unable to save its snapshot (MISCONF).
_OUTAGE_REPLIES = ("OOM command not allowed", "MISCONF ")


def redis_unreachable(error: redis.RedisError) -> bool:
    """Whether a Redis error means the store cannot serve us now (503, retry), not a failed command."""
    if isinstance(error, redis.ConnectionError | redis.TimeoutError | redis.exceptions.ReadOnlyError
                  | redis.exceptions.ClusterDownError | redis.exceptions.TryAgainError
                  | redis.exceptions.OutOfMemoryError):
        return True
    return isinstance(error, redis.ResponseError) and any(reply in str(error) for reply in _OUTAGE_REPLIES)


def _envelope(message: str, code: str, http_status: int) -> ApiError:
    """An ApiError of its own code and status (werkzeug's errors and our internal error)."""
    error = ApiError(message)
    error.code = code
    error.http_status = http_status
    return error


def _internal_error() -> tuple[Response, int]:
    """The 500 envelope: no detail (the traceback is in the server log)."""
    return _error_response(_envelope("internal error; see the server log", "internal_error", 500))


def create_app(settings: Settings, *, client: redis.Redis | None = None,
               dispatcher: Dispatcher | None = None) -> Flask:
    """Build the API; tests pass a fakeredis client and a fake dispatcher."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_code_bytes * 2 + BODY_OVERHEAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = Services.build(settings, client=client, dispatcher=dispatcher)
    app.extensions["penny"] = services
    app.url_map.converters["id"] = IdConverter  # before the blueprints' rules are bound
    app.url_map.converters["filepath"] = FilePathConverter
    app.register_blueprint(executions_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(session_control_bp)
    app.register_blueprint(session_files_bp)
    app.register_blueprint(packages_bp)
    app.register_blueprint(validation_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(meta_bp)
    app.register_blueprint(docs_page_bp)
    app.register_blueprint(playground_bp)  # `/`: the web playground (web/dist)
    limits.install(app, services)  # per-tenant request rates (RATE_LIMIT_*)
    install_cors(app, settings.cors_origins)  # before authenticate: a preflight carries no key
    if services.tenants.open:
        log.warning("PENNY_API_KEYS is empty: the API is OPEN to anyone who can reach it, every request acts "
                    "for tenant 'default' and may read the audit trail. Configure keys before exposing it.")

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return _error_response(error)

    @app.errorhandler(redis.RedisError)
    def _redis_error(error: redis.RedisError) -> tuple[Response, int]:
        if not redis_unreachable(error):  # e.g. WRONGTYPE: a bug of ours, not an outage; no Retry-After
            log.exception("redis command failed")
            return _internal_error()
        log.error("redis unavailable: %s", error)
        return _error_response(Unavailable("the job store is unavailable; try again shortly", retry_after_s=5))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        if error.code == 413:
            return _error_response(PayloadTooLarge(
                f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"))
        response, status = _error_response(_envelope(error.description or error.name,
                                                     error.name.lower().replace(" ", "_"), error.code or 500))
        for name, value in error.get_headers():  # e.g. 405's Allow (RFC 9110), not its HTML content type
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return _internal_error()

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.before_request
    def _authenticate() -> None:
        authenticate(services.tenants)

    @app.after_request
    def _count(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        if "started" in g:
            metrics.REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - g.started)
        return response

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Content-Security-Policy", DATA_CSP)
        return response

    @app.get("/metrics")
    def prometheus() -> Response:
        """Prometheus text format: the API's processes and the cluster gauges."""
        return Response(metrics.render(services), mimetype=metrics.CONTENT_TYPE.split(";")[0],
                        headers={"Content-Type": metrics.CONTENT_TYPE})

    @app.get("/health")
    def health() -> tuple[Response, int]:
        """healthy / degraded (a worker missing, no idle sandbox) / unhealthy (Redis down, no worker: 503)."""
        return health_report(services)

    return app
