"""How a route describes itself for the OpenAPI document: `@documented(...)` under the route decorator.

    @bp.post("/things/<thing_id>/poke")
    @documented(tag="things", body=PokeSchema, ok=Reply(200, "the poked thing", ThingSchema),
                errors=(NotFound, Conflict), example={"times": 2})
    def poke(thing_id: str) -> Response:
        \"\"\"Poke a thing (the first docstring line is the summary; the rest, the description).\"\"\"

api.openapi walks the app's url_map and turns each /api/v1 route's description into an operation. What it
adds by itself, so a description lists only what its view decides:
  - path parameters, from the rule (`<thing_id>` -> `{thing_id}`, a string);
  - 401 unauthorized and the bearer security requirement (unless `public=True`);
  - 503 unavailable (Redis unreachable: any route may answer it) unless `public=True`;
  - with a `body`: 400 validation_error (the JSON decoder and the schema), 413 payload_too_large and
    415 unsupported_media_type;
  - 429 overloaded with Retry-After when the endpoint has a rate-limit scope (api.limits.SCOPES).
`errors` names the other ApiError classes the view (or what it calls) may raise; each becomes a response with
its status, its code and the error envelope. Every field of a request or response is a marshmallow schema in
api.schemas (never a hand-written JSON schema). A route without `@documented` fails
tests/unit/test_openapi.py, and so does a route in the document that the app does not serve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from marshmallow import Schema

from core.errors import ApiError
from core.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# A request body's schema: a class, or (for bodies bounded by settings) a function of the settings.
SchemaSource = type[Schema] | Callable[[Settings], Schema]

OPERATION_ATTRIBUTE = "__penny_operation__"


@dataclass(frozen=True)
class Param:
    """A query or header parameter (a string unless `schema` says otherwise)."""

    name: str
    where: str  # "query" | "header"
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Reply:
    """A success response: status, description, and a JSON body schema, SSE events, or nothing (204)."""

    status: int
    description: str
    schema: type[Schema] | None = None
    # SSE: event name -> payload schema of its `data:` line; the response is text/event-stream.
    events: Mapping[str, type[Schema]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # header name -> description
    example: Any = None


@dataclass(frozen=True)
class Operation:
    """Everything the OpenAPI document says about one route besides what api.openapi derives."""

    tag: str
    summary: str
    description: str
    replies: tuple[Reply, ...]
    body: SchemaSource | None = None
    body_required: bool = True
    errors: tuple[type[ApiError], ...] = ()
    params: tuple[Param, ...] = ()
    public: bool = False
    example: Mapping[str, Any] | None = None


def documented(*, tag: str, ok: Reply | tuple[Reply, ...], body: SchemaSource | None = None,
               body_required: bool = True, errors: tuple[type[ApiError], ...] = (), params: tuple[Param, ...] = (),
               public: bool = False, example: Mapping[str, Any] | None = None) -> Callable[[F], F]:
    """Attach the route's Operation to its view (summary and description from the view's docstring)."""

    def attach(view: F) -> F:
        doc = (view.__doc__ or "").strip()
        summary, _, rest = doc.partition("\n")
        setattr(view, OPERATION_ATTRIBUTE, Operation(
            tag=tag, summary=summary.strip(), description=" ".join(rest.split()),
            replies=ok if isinstance(ok, tuple) else (ok,), body=body, body_required=body_required,
            errors=errors, params=params, public=public, example=example))
        return view

    return attach


def operation_of(view: Callable[..., Any]) -> Operation | None:
    """The Operation a view was described with (through wrappers such as api.limits'), or None."""
    return getattr(view, OPERATION_ATTRIBUTE, None)
