"""POST /api/v1/validate: the static analysis on its own."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.context import load_body, services
from api.schemas import ValidateSchema
from core.analysis import Analysis

bp = Blueprint("validation", __name__, url_prefix="/api/v1")


@bp.post("/validate")
def validate() -> Response:
    """{valid, errors, warnings} of the code; with strict, warnings count as errors too."""
    data = load_body(ValidateSchema())
    analysis = services().analyzer.analyze(data["code"])
    if data["strict"]:
        analysis = Analysis(analysis.errors + analysis.warnings, ())
    return jsonify(analysis.to_api(include_warnings=data["includeWarnings"]))
