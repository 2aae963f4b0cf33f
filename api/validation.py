"""POST /api/v1/validate: the static analysis on its own."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.apidoc import Reply, documented
from api.context import load_body, services
from api.schemas import AnalysisSchema, ValidateSchema
from core.analysis import Analysis

bp = Blueprint("validation", __name__, url_prefix="/api/v1")


@bp.post("/validate")
@documented(tag="validation", body=ValidateSchema, example={"code": "import os\nos.system('ls')"},
            ok=Reply(200, "the findings; valid is false when there is an error", AnalysisSchema))
def validate() -> Response:
    """{valid, errors, warnings} of the code; with strict, warnings count as errors too."""
    data = load_body(ValidateSchema())
    analysis = services().analyzer.analyze(data["code"])
    if data["strict"]:
        analysis = Analysis(analysis.errors + analysis.warnings, ())
    return jsonify(analysis.to_api(include_warnings=data["includeWarnings"]))
