"""What every endpoint needs from the request: the process's Services, and a validated JSON body."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from marshmallow import Schema, ValidationError

from api.json_body import decode_json_body
from api.services import Services
from core.errors import UnsupportedMediaType, ValidationFailed


def services() -> Services:
    """The Services this API process was built with (create_app puts them in the app)."""
    return current_app.extensions["penny"]


def parse_json_body() -> dict[str, Any]:
    """The request's JSON object, or the 415/400 envelope (413 past the app's MAX_CONTENT_LENGTH)."""
    if not request.is_json:
        raise UnsupportedMediaType("send the body as JSON with Content-Type: application/json")
    # Decoded here, not by request.get_json: nesting and string encodability are checked before anything
    # (marshmallow, Redis, the job store) walks or encodes the values (see api.json_body).
    return decode_json_body(request.get_data(cache=True))


def load_body(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded by schema; 400 validation_error naming the bad fields."""
    try:
        return dict(schema.load(parse_json_body()))
    except ValidationError as exc:
        raise ValidationFailed("the request is invalid", details={"fields": exc.messages}) from None
