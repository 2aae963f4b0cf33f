"""Package endpoints: the allowlist, and installing into a session."""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, Response, jsonify, request

from api.apidoc import Param, Reply, documented
from api.auth import current_key_id, current_tenant
from api.context import load_body
from api.context import services as current_services
from api.executions import StillRunning, live_session, submit, wait_for_result
from api.schemas import InstallReportSchema, PackageInstallSchema, PackageListSchema
from core import keys
from core.errors import Conflict, Forbidden, NotFound, Overloaded, Unavailable
from core.models import ExecutionRequest

bp = Blueprint("packages", __name__, url_prefix="/api/v1")

INSTALL_TIMEOUT_MS = 300_000


@bp.get("/packages")
@documented(tag="packages", params=(Param("search", "query", "a word in the name or description"),
                                    Param("category", "query", "only this category")),
            ok=Reply(200, "the allowlisted packages, by name", PackageListSchema))
def list_packages() -> Response:
    """The allowlist (?search= in name or description, ?category=), with the preinstalled versions."""
    services = current_services()
    preinstalled = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in cast(dict[Any, Any], services.redis.hgetall(keys.PREINSTALLED_PACKAGES)).items()}
    listing = services.packages.listing(search=request.args.get("search"), category=request.args.get("category"))
    for entry in listing:
        version = preinstalled.get(entry["name"].lower().replace("_", "-"))
        entry.update(version=version, preinstalled=version is not None)
    return jsonify({"packages": listing})


@bp.post("/packages/install")
@documented(tag="packages", body=PackageInstallSchema, example={"sessionId": "<sessionId>", "packages": ["tabulate"]},
            errors=(Forbidden, NotFound, Conflict, Overloaded, Unavailable),
            ok=Reply(200, "what was installed, and what was not with why", InstallReportSchema))
def install_packages() -> Response:
    """Install allowlisted packages into one session, in order with its executions."""
    services = current_services()
    data = load_body(PackageInstallSchema())
    live_session(services, data["sessionId"])
    failed, accepted = [], []
    for spec in dict.fromkeys(data["packages"]):
        requirement, reason = services.packages.check(spec)
        if reason:
            failed.append({"name": requirement.name if requirement else spec, "reason": reason})
        else:
            accepted.append(spec)
    installed: list[dict[str, str]] = []
    if accepted:
        job_id, _ = submit(services, ExecutionRequest(
            code="", timeout_ms=INSTALL_TIMEOUT_MS, session_id=data["sessionId"], tenant=current_tenant(),
            key_id=current_key_id(), packages=tuple(accepted), force_packages=data["force"]))
        try:
            result = wait_for_result(services, job_id, INSTALL_TIMEOUT_MS)
        except StillRunning:
            raise Unavailable("the installation did not end in time", retry_after_s=5) from None
        report = result.get("packages")
        if report is None:
            raise Unavailable(f"the installation ended {result['status']}", details={"result": result})
        installed, failed = report["installed"], failed + report["failed"]
    return jsonify({"installed": installed, "failed": failed})
