"""POST /api/v1/validate: the static analysis on its own."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from marshmallow import ValidationError

from api.executions import parse_json_body
from api.schemas import ValidateSchema
from api.services import Services
from core.analysis import Analysis
from core.errors import ValidationFailed

bp = Blueprint("validation", __name__, url_prefix="/api/v1")


@bp.post("/validate")
def validate() -> Response:
    """{valid, errors, warnings} of the code; with strict, warnings count as errors too."""
    services: Services = current_app.extensions["penny"]
    try:
        data = ValidateSchema().load(parse_json_body())
    except ValidationError as exc:
        raise ValidationFailed("the request is invalid", details={"fields": exc.messages}) from None
    analysis = services.analyzer.analyze(data["code"])
    if data["strict"]:
        analysis = Analysis(analysis.errors + analysis.warnings, ())
    return jsonify(analysis.to_api(include_warnings=data["includeWarnings"]))
