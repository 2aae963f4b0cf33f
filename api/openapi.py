"""The OpenAPI 3.1 document of the API, generated from the app's routes and the marshmallow schemas.

Served at GET /api/v1/openapi.json (api.docs). `python -m api.openapi --out FILE` writes exactly what a server
with the same environment serves, without starting one (the TypeScript client generates its types from it).

What is documented: every route of the app's url_map under /api/v1 (API_PREFIX); routes outside it (/health,
/metrics, /docs and its assets) are operations of the service, not of the API contract. How a route describes
itself, and what this module adds to every description (auth, error responses): see api.apidoc.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import Rule

from api import limits, schemas
from api.apidoc import Operation, Reply, operation_of
from core.errors import (
    ApiError,
    Conflict,
    Forbidden,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    PolicyViolation,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from core.ids import ID_PATTERN
from core.settings import Settings

API_PREFIX = "/api/v1"
# The version of the contract: a breaking change makes it /api/v2. Minor: fields or routes added.
API_VERSION = "1.0.0"
OPENAPI_VERSION = "3.1.0"
PACKAGE = "penny-sandbox"
BEARER = "bearerAuth"

_RULE_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_RULE_CONVERTER_ARGUMENT = re.compile(r"<(?:([^:<>]+):)?([^<>]+)>")

# The code and meaning of each refusal, for the response descriptions and examples.
_ERROR_MEANING: dict[type[ApiError], str] = {
    ValidationFailed: "the request is invalid (details.fields names each bad field)",
    Unauthorized: "no valid API key: send `Authorization: Bearer <key>`",
    Forbidden: "the key may not do this: an admin-only key cannot run code, a tenant's key cannot read the audit "
               "trail",
    NotFound: "no such job or session for this key's tenant (another tenant's is not found either)",
    Conflict: "the job or session is in a state that forbids it (a session lost or expired, a job already ended)",
    PolicyViolation: "strict mode: the code breaks the policy (details lists the findings)",
    PayloadTooLarge: "the body (or its code) is larger than the service accepts",
    UnsupportedMediaType: "the body is not sent as application/json",
    Overloaded: "too many requests or jobs: retry after Retry-After seconds",
    Unavailable: "the service cannot take the request now (Redis, the queue or the workers): retry after "
                 "Retry-After seconds",
}


def package_version() -> str:
    """The installed penny-sandbox's version ("0+unknown" when run from a tree that is not installed)."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _schema_name(schema: type[Schema] | Schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return cls.__name__.removesuffix("Schema")


def _body_schema(operation: Operation, settings: Settings) -> Schema:
    source = operation.body
    assert source is not None
    if isinstance(source, type):
        return source()
    return source(settings)


def _error_classes(operation: Operation, endpoint: str) -> list[type[ApiError]]:
    classes: list[type[ApiError]] = list(operation.errors)
    if not operation.public:
        classes += [Unauthorized, Unavailable]
    if operation.body is not None:
        classes += [ValidationFailed, PayloadTooLarge, UnsupportedMediaType]
    if endpoint in limits.SCOPES:
        classes.append(Overloaded)
    return sorted(set(classes), key=lambda cls: (cls.http_status, cls.code))


def _error_responses(classes: list[type[ApiError]]) -> dict[str, Any]:
    by_status: dict[int, list[type[ApiError]]] = {}
    for cls in classes:
        by_status.setdefault(cls.http_status, []).append(cls)
    responses: dict[str, Any] = {}
    for status, group in by_status.items():
        lines = [f"`{cls.code}`: {_ERROR_MEANING.get(cls, cls.__name__)}" for cls in group]
        examples = {cls.code: {"value": {"error": {"code": cls.code, "message": _ERROR_MEANING.get(cls, cls.code),
                                                   "details": {}}}} for cls in group}
        response: dict[str, Any] = {
            "description": "; ".join(lines),
            "content": {"application/json": {"schema": schemas.ErrorEnvelopeSchema, "examples": examples}},
        }
        if any(cls in (Overloaded, Unavailable) for cls in group):
            response["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                                   "schema": {"type": "integer", "minimum": 0}}}
        if Unauthorized in group:
            response["headers"] = {"WWW-Authenticate": {"description": 'Bearer realm="penny"',
                                                        "schema": {"type": "string"}}}
        responses[str(status)] = response
    return responses


def _reply(reply: Reply, spec: APISpec) -> dict[str, Any]:
    response: dict[str, Any] = {"description": reply.description}
    if reply.schema is not None:
        media: dict[str, Any] = {"schema": reply.schema}
        if reply.example is not None:
            media["example"] = reply.example
        response["content"] = {"application/json": media}
    elif reply.events is not None:
        for schema in reply.events.values():
            _register(spec, schema)
        events = {name: {"$ref": f"#/components/schemas/{_schema_name(schema)}"}
                  for name, schema in reply.events.items()}
        response["content"] = {"text/event-stream": {
            "schema": {"type": "string", "description": "Server-Sent Events: `id:`, `event:` (one of "
                       + ", ".join(reply.events) + ") and one `data:` line of JSON each; see JobEvent"},
            "x-sse-events": events,
        }}
    if reply.headers:
        response["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                               for name, text in reply.headers.items()}
    return response


def _register(spec: APISpec, schema: type[Schema]) -> None:
    name = _schema_name(schema)
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)


def _operation(rule: Rule, operation: Operation, endpoint: str, settings: Settings,
               spec: APISpec) -> dict[str, Any]:
    described: dict[str, Any] = {"tags": [operation.tag], "summary": operation.summary,
                                 "operationId": endpoint.split(".")[-1]}
    if operation.description:
        described["description"] = operation.description
    parameters = [_path_parameter(converter, name) for converter, name in _RULE_CONVERTER_ARGUMENT.findall(rule.rule)]
    parameters += [{"name": p.name, "in": p.where, "required": False, "description": p.description,
                    "schema": dict(p.schema)} for p in operation.params]
    if parameters:
        described["parameters"] = parameters
    if operation.body is not None:
        media: dict[str, Any] = {"schema": _body_schema(operation, settings)}
        if operation.example is not None:
            media["example"] = dict(operation.example)
        described["requestBody"] = {"required": operation.body_required, "content": {"application/json": media}}
    responses = {str(reply.status): _reply(reply, spec) for reply in operation.replies}
    responses.update(_error_responses(_error_classes(operation, endpoint)))
    described["responses"] = responses
    if operation.public:
        described["security"] = []
    return described


def _path_parameter(converter: str, name: str) -> dict[str, Any]:
    """A path parameter; an `id` one (api.ids) matches only ID_PATTERN, anything else is 404."""
    schema: dict[str, Any] = {"type": "string"}
    if converter == "id":
        schema["pattern"] = f"^{ID_PATTERN}$"
    return {"name": name, "in": "path", "required": True, "schema": schema}


def openapi_path(rule: Rule) -> str:
    """The rule's path in OpenAPI form: `/jobs/<job_id>` -> `/jobs/{job_id}`."""
    return _RULE_ARGUMENT.sub(lambda m: "{" + m.group(1) + "}", rule.rule)


def api_rules(app: Flask) -> list[Rule]:
    """The app's routes that belong to the API contract (under API_PREFIX), in a stable order."""
    return sorted((rule for rule in app.url_map.iter_rules()
                   if rule.rule == API_PREFIX or rule.rule.startswith(API_PREFIX + "/")),
                  key=lambda rule: (rule.rule, sorted(rule.methods or ())))


def _job_event_union(spec: APISpec) -> None:
    """JobEvent: one SSE event as a client sees it once parsed, a union by `event` (for typed clients)."""
    from api.executions import JOB_EVENTS

    variants = []
    for name, schema in JOB_EVENTS.items():
        _register(spec, schema)
        variants.append({"type": "object", "required": ["id", "event", "data"], "properties": {
            "id": {"type": "string", "description": "the event id; send it as Last-Event-ID to resume after it"},
            "event": {"const": name},
            "data": {"$ref": f"#/components/schemas/{_schema_name(schema)}"}}})
    spec.components.schema("JobEvent", {"oneOf": variants, "description": "One Server-Sent Event of a job's "
                                        "stream: `event` names it, `data` is its JSON payload, `id` resumes it."})


def build_spec(app: Flask, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of the app's /api/v1 routes (bounds such as the maximum timeout from settings)."""
    spec = APISpec(
        title="PENNY Sandbox API", version=API_VERSION, openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": "Run untrusted Python in hardened sandboxes: one-off executions, streamed or as "
                             "jobs, and stateful sessions. Every refusal is the error envelope "
                             "`{\"error\": {code, message, details}}`.",
              "x-package-version": package_version()},
        security=[{BEARER: []}],
    )
    spec.components.security_scheme(BEARER, {
        "type": "http", "scheme": "bearer",
        "description": "An API key of PENNY_API_KEYS (`Authorization: Bearer <key>`); every job and session "
                       "belongs to its key's tenant. With no keys configured the API runs open."})
    _job_event_union(spec)
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        operation = operation_of(view)
        if operation is None:
            raise LookupError(f"route {rule.rule} ({rule.endpoint}) is not described: see api.apidoc")
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        spec.path(path=openapi_path(rule), operations={
            method.lower(): _operation(rule, operation, rule.endpoint, settings, spec) for method in methods})
    document = spec.to_dict()
    return document


def dump(document: dict[str, Any]) -> str:
    """The document as served: JSON, keys in order, a newline at the end."""
    return json.dumps(document, indent=2) + "\n"


def main(argv: list[str] | None = None, *, create: Callable[[Settings], Flask] | None = None) -> int:
    """`python -m api.openapi [--out FILE]`: write the served document (stdout by default)."""
    parser = argparse.ArgumentParser(prog="python -m api.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the document here (default: stdout)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if create is None:
        from api.app import create_app

        create = create_app
    text = dump(build_spec(create(settings), settings))  # building the app connects to nothing
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
