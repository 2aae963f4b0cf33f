"""The Flask app factory and the one error handler that renders the JSON envelope."""

from __future__ import annotations

import logging
import time
from typing import Any

import psutil
import redis
from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from api.executions import bp as executions_bp
from api.services import Dispatcher, Services
from api.sessions import bp as sessions_bp
from core.errors import ApiError, PayloadTooLarge, Unavailable
from core.settings import Settings

log = logging.getLogger(__name__)

# The body may hold code (max_code_bytes) plus variables; the code limit itself is checked per field.
BODY_OVERHEAD_BYTES = 1024 * 1024


def _error_response(error: ApiError) -> tuple[Response, int]:
    response = jsonify(error.to_envelope())
    if error.retry_after_s is not None:
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response, error.http_status


def create_app(settings: Settings, *, client: redis.Redis | None = None,
               dispatcher: Dispatcher | None = None) -> Flask:
    """Build the API; tests pass a fakeredis client and a fake dispatcher."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_code_bytes * 2 + BODY_OVERHEAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    services = Services.build(settings, client=client, dispatcher=dispatcher)
    app.extensions["penny"] = services
    app.register_blueprint(executions_bp)
    app.register_blueprint(sessions_bp)

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return _error_response(error)

    @app.errorhandler(redis.RedisError)
    def _redis_down(error: redis.RedisError) -> tuple[Response, int]:
        log.error("redis unavailable: %s", error)
        return _error_response(Unavailable("the job store is unreachable; try again shortly",
                                           retry_after_s=5))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> tuple[Response, int]:
        if error.code == 413:
            return _error_response(PayloadTooLarge(
                f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"))
        envelope = ApiError(error.description or error.name)
        envelope.code = error.name.lower().replace(" ", "_")
        envelope.http_status = error.code or 500
        return _error_response(envelope)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        envelope = ApiError("internal error; see the server log")
        envelope.code = "internal_error"
        return _error_response(envelope)

    @app.get("/health")
    def health() -> tuple[Response, int]:
        """Whether the service can run code: Redis reachable and at least one worker alive."""
        body: dict[str, Any] = {"uptime": int(time.time() - services.started_at)}
        try:
            workers = services.registry.alive()
            body["queue"] = {"depth": services.admission.queue_depth()}
        except redis.RedisError:
            body.update(status="unhealthy", reason="redis unreachable", workers=[])
            return jsonify(body), 503
        body["workers"] = list(workers.values())
        body["system"] = {"memory": psutil.virtual_memory().percent, "cpu": psutil.cpu_percent(interval=None),
                          "disk": psutil.disk_usage("/").percent}
        if not workers:
            body["status"] = "unhealthy"
            return jsonify(body), 503
        idle = sum(int(w.get("pool", {}).get("idle", 0)) for w in workers.values())
        body["status"] = "healthy" if idle > 0 else "degraded"
        return jsonify(body), 200

    return app
