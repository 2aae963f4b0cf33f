"""Request and response shapes of the API, as marshmallow schemas."""

from __future__ import annotations

import functools

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

MAX_STDIN_CHARS = 2**20  # sandbox_runtime.protocol.MAX_STDIN_CHARS
_IDENTIFIER = validate.Regexp(r"^(?!__)[A-Za-z_][A-Za-z0-9_]*$",
                              error="variable names must be Python identifiers not starting with '__'")


MAX_INPUT_FILES = 100


class InputFileSchema(Schema):
    """One file of an execute's `files`: written to /workspace/{path} before the code runs."""

    class Meta:
        unknown = RAISE

    path = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    content = fields.String(load_default=None)  # base64
    text = fields.String(load_default=None)

    @validates_schema
    def _one_of_content_or_text(self, data: dict[str, object], **_: object) -> None:
        if (data.get("content") is None) == (data.get("text") is None):
            raise ValidationError("give either content (base64) or text")


@functools.lru_cache(maxsize=8)
def execute_request_schema(*, max_timeout_ms: int) -> Schema:
    """The body of POST /execute, /execute/stream and /jobs; timeout is bounded by max_timeout_ms."""

    class ExecuteRequestSchema(Schema):
        class Meta:
            unknown = RAISE

        code = fields.String(required=True)
        timeout = fields.Integer(strict=True, load_default=None,
                                 validate=validate.Range(min=1, max=max_timeout_ms,
                                                         error=f"timeout must be 1..{max_timeout_ms} ms"))
        variables = fields.Dict(keys=fields.String(validate=_IDENTIFIER), load_default=dict)
        sessionId = fields.String(load_default=None, allow_none=True)  # noqa: N815 (API field name)
        packages = fields.List(fields.String(), load_default=None, allow_none=True)
        plotFormats = fields.List(fields.String(validate=validate.OneOf(["png", "svg"])),  # noqa: N815
                                  load_default=lambda: ["png"], validate=validate.Length(min=1, max=2))
        strict = fields.Boolean(load_default=False)
        stdin = fields.String(load_default="", validate=validate.Length(max=MAX_STDIN_CHARS,
                              error=f"stdin is at most {MAX_STDIN_CHARS} characters"))
        files = fields.List(fields.Nested(InputFileSchema), load_default=list,
                            validate=validate.Length(max=MAX_INPUT_FILES))
        outputFiles = fields.List(fields.String(validate=validate.Length(min=1, max=4096)),  # noqa: N815
                                  load_default=list, validate=validate.Length(max=20))

        @validates("code")
        def _code_not_blank(self, value: str, **_: object) -> None:
            if not value.strip():
                raise ValidationError("code must not be empty")

    return ExecuteRequestSchema()


class ErrorSchema(Schema):
    type = fields.String(required=True)
    message = fields.String(required=True)
    traceback = fields.List(fields.String(), required=True)


class ValueSchema(Schema):
    type = fields.String(required=True)
    repr = fields.String(required=True)


class MetricsSchema(Schema):
    queuedMs = fields.Integer(required=True)  # noqa: N815
    durationMs = fields.Integer(required=True)  # noqa: N815
    cpuMs = fields.Integer(required=True)  # noqa: N815
    peakMemoryBytes = fields.Integer(required=True)  # noqa: N815
    diskBytes = fields.Integer(required=True)  # noqa: N815


class ExecutionResultSchema(Schema):
    """The ExecutionResult every finished job returns."""

    class Meta:
        unknown = RAISE

    jobId = fields.String(required=True)  # noqa: N815
    sessionId = fields.String(required=True, allow_none=True)  # noqa: N815
    status = fields.String(required=True, validate=validate.OneOf([
        "success", "error", "timeout", "memory_exceeded", "output_limit", "policy_violation", "cancelled",
        "worker_lost"]))
    stdout = fields.String(required=True)
    stderr = fields.String(required=True)
    truncated = fields.Boolean(required=True)
    result = fields.Nested(ValueSchema, required=True, allow_none=True)
    error = fields.Nested(ErrorSchema, required=True, allow_none=True)
    plots = fields.List(fields.Dict(), required=True)
    displays = fields.List(fields.Dict(), required=True)
    notes = fields.List(fields.String(), required=True)
    variables = fields.Dict(required=True)
    metrics = fields.Nested(MetricsSchema, required=True)
    worker = fields.String(required=True, allow_none=True)
    sessionState = fields.String(required=True, allow_none=True, validate=validate.OneOf(["kept", "lost"]))  # noqa: N815
    packages = fields.Dict(required=True, allow_none=True)
    findings = fields.List(fields.Dict(), required=True)
    files = fields.List(fields.Dict(), load_default=list)  # outputFiles' matches: {path, size, content (base64)}


class JobSchema(Schema):
    """GET /jobs/{id}: where the job is, and its result once final."""

    class Meta:
        unknown = RAISE

    jobId = fields.String(required=True)  # noqa: N815
    status = fields.String(required=True)
    worker = fields.String(allow_none=True)
    result = fields.Nested(ExecutionResultSchema, allow_none=True)


class ErrorEnvelopeSchema(Schema):
    """{"error": {code, message, details}} of every refused request."""

    class _Body(Schema):
        code = fields.String(required=True)
        message = fields.String(required=True)
        details = fields.Dict(required=True)

    error = fields.Nested(_Body, required=True)


class SessionCreateSchema(Schema):
    """The body of POST /sessions (all optional)."""

    class Meta:
        unknown = RAISE

    packages = fields.List(fields.String(), load_default=None, allow_none=True)
    variables = fields.Dict(keys=fields.String(validate=_IDENTIFIER), load_default=dict)


class SessionVariablesSchema(Schema):
    """The body of PUT /sessions/{id}/variables."""

    class Meta:
        unknown = RAISE

    variables = fields.Dict(keys=fields.String(validate=_IDENTIFIER), required=True)


class SessionSchema(Schema):
    """GET /sessions/{id}."""

    class Meta:
        unknown = RAISE

    sessionId = fields.String(required=True)  # noqa: N815
    status = fields.String(required=True, validate=validate.OneOf(["starting", "ready", "busy", "lost", "expired"]))
    createdAt = fields.String(required=True)  # noqa: N815
    lastUsedAt = fields.String(required=True)  # noqa: N815
    expiresAt = fields.String(required=True)  # noqa: N815
    executionCount = fields.Integer(required=True)  # noqa: N815
    variables = fields.Dict(required=True)
    packages = fields.List(fields.String(), required=True)
    resources = fields.Dict(required=True)
    worker = fields.String(required=True)


class PackageInstallSchema(Schema):
    """The body of POST /packages/install."""

    class Meta:
        unknown = RAISE

    sessionId = fields.String(required=True)  # noqa: N815
    packages = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=50))
    force = fields.Boolean(load_default=False)


class ValidateSchema(Schema):
    """The body of POST /validate."""

    class Meta:
        unknown = RAISE

    code = fields.String(required=True)
    strict = fields.Boolean(load_default=False)
    includeWarnings = fields.Boolean(load_default=True)  # noqa: N815
