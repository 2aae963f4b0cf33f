"""Request and response shapes of the API, as marshmallow schemas.

The API loads request bodies with these schemas, and api.openapi generates the OpenAPI document from them
(component names are the class names without `Schema`), so a field changed here changes both.
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from core.isolation import Tier

MAX_STDIN_CHARS = 2**20  # sandbox_runtime.protocol.MAX_STDIN_CHARS


class _WholeString(validate.Regexp):
    """A pattern the whole string must match. Regexp's `$` also admits a trailing newline ("x\\n"), which
    JSON Schema's does not: the document (which states the pattern) and the API must refuse the same names."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise validate.ValidationError(self._format_error(value))
        return value


class StrictBoolean(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 1, "yes", "on" and more, which JSON Schema's boolean
    (the document) does not."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


_IDENTIFIER = _WholeString(r"^(?!__)[A-Za-z_][A-Za-z0-9_]*$",
                           error="variable names must be Python identifiers not starting with '__'")
# Code with at least one character that is not whitespace (a pattern, so the document states it too).
_NOT_BLANK = validate.Regexp(r"[\s\S]*\S", error="code must not be empty")


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

        code = fields.String(required=True, validate=_NOT_BLANK)
        timeout = fields.Integer(strict=True, load_default=None,
                                 validate=validate.Range(min=1, max=max_timeout_ms,
                                                         error=f"timeout must be 1..{max_timeout_ms} ms"))
        variables = fields.Dict(keys=fields.String(validate=_IDENTIFIER), load_default=dict)
        sessionId = fields.String(load_default=None, allow_none=True)  # noqa: N815 (API field name)
        packages = fields.List(fields.String(), load_default=None, allow_none=True)
        plotFormats = fields.List(fields.String(validate=validate.OneOf(["png", "svg"])),  # noqa: N815
                                  load_default=lambda: ["png"], validate=validate.Length(min=1, max=2))
        strict = StrictBoolean(load_default=False)
        stdin = fields.String(load_default="", validate=validate.Length(max=MAX_STDIN_CHARS,
                              error=f"stdin is at most {MAX_STDIN_CHARS} characters"))
        files = fields.List(fields.Nested(InputFileSchema), load_default=list,
                            validate=validate.Length(max=MAX_INPUT_FILES))
        outputFiles = fields.List(fields.String(validate=validate.Length(min=1, max=4096)),  # noqa: N815
                                  load_default=list, validate=validate.Length(max=20))

    return ExecuteRequestSchema()


class ExecutionErrorSchema(Schema):
    """How the user's code failed (an exception it raised, a timeout, ...)."""

    type = fields.String(required=True)
    message = fields.String(required=True)
    traceback = fields.List(fields.String(), required=True)


class ValueSchema(Schema):
    """A value as a notebook shows it: its type name and repr, plus the richer representations it offers (html from
    _repr_html_, json from _repr_json_ or a session file operation's data, png/svg base64 for an image)."""

    type = fields.String(required=True)
    repr = fields.String(required=True)
    html = fields.String()
    json = fields.Raw()
    png = fields.String()
    svg = fields.String()


class MetricsSchema(Schema):
    """What the execution cost: times in ms, sizes in bytes."""

    queuedMs = fields.Integer(required=True)  # noqa: N815
    durationMs = fields.Integer(required=True)  # noqa: N815
    cpuMs = fields.Integer(required=True)  # noqa: N815
    peakMemoryBytes = fields.Integer(required=True)  # noqa: N815
    diskBytes = fields.Integer(required=True)  # noqa: N815


class OutputFileSchema(Schema):
    """A file an execution's outputFiles matched."""

    class Meta:
        unknown = RAISE

    path = fields.String(required=True, metadata={"description": "relative to /workspace"})
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    content = fields.String(required=True, metadata={"description": "the bytes, base64"})


ISOLATION_TIERS = [tier.value for tier in Tier]


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
    error = fields.Nested(ExecutionErrorSchema, required=True, allow_none=True)
    plots = fields.List(fields.Dict(), required=True)
    displays = fields.List(fields.Dict(), required=True)
    notes = fields.List(fields.String(), required=True)
    variables = fields.Dict(required=True)
    metrics = fields.Nested(MetricsSchema, required=True)
    worker = fields.String(required=True, allow_none=True)
    sessionState = fields.String(required=True, allow_none=True, validate=validate.OneOf(["kept", "lost"]))  # noqa: N815
    packages = fields.Dict(required=True, allow_none=True)
    findings = fields.List(fields.Dict(), required=True)
    files = fields.List(fields.Nested(OutputFileSchema), load_default=list)
    isolation = fields.String(required=True, allow_none=True, validate=validate.OneOf(ISOLATION_TIERS), metadata={
        "description": "the isolation tier whose sandbox ran it (runc: the host's kernel; gvisor: gVisor's); "
                       "null when no sandbox ran it"})


JOB_STATUSES = ["queued", "running", "success", "error", "timeout", "memory_exceeded", "output_limit",
                "policy_violation", "cancelled", "worker_lost"]


class JobSchema(Schema):
    """GET /jobs/{id}: where the job is, and its result once final."""

    class Meta:
        unknown = RAISE

    jobId = fields.String(required=True)  # noqa: N815
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    worker = fields.String(allow_none=True)
    isolation = fields.String(required=True, allow_none=True, validate=validate.OneOf(ISOLATION_TIERS), metadata={
        "description": "the result's isolation tier once the job ended; null before"})
    result = fields.Nested(ExecutionResultSchema, allow_none=True)


class JobAcceptedSchema(Schema):
    """A job accepted and not ended yet (202): follow it at the Location header, /api/v1/jobs/{jobId}."""

    class Meta:
        unknown = RAISE

    jobId = fields.String(required=True)  # noqa: N815
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))


class JobCancelledSchema(Schema):
    """DELETE /jobs/{id} (202): the job's status after the cancel; cancelRequested when it was running."""

    class Meta:
        unknown = RAISE

    jobId = fields.String(required=True)  # noqa: N815
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    cancelRequested = fields.Boolean()  # noqa: N815


class ApiErrorSchema(Schema):
    """What went wrong: a snake_case code (one per HTTP status, see each response), a message for people,
    and details for programs."""

    class Meta:
        unknown = RAISE

    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict(required=True)


class ErrorEnvelopeSchema(Schema):
    """{"error": {code, message, details}} of every refused request."""

    class Meta:
        unknown = RAISE

    error = fields.Nested(ApiErrorSchema, required=True)


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
    isolation = fields.String(required=True, validate=validate.OneOf(ISOLATION_TIERS), metadata={
        "description": "the isolation tier of the session's sandbox (its tenant's when it was created)"})


class SessionCreatedSchema(Schema):
    """POST /sessions (201): the new session; its URL is in the Location header."""

    class Meta:
        unknown = RAISE

    sessionId = fields.String(required=True)  # noqa: N815
    createdAt = fields.String(required=True)  # noqa: N815
    expiresAt = fields.String(required=True)  # noqa: N815
    worker = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["starting", "ready", "busy", "lost", "expired"]))
    isolation = fields.String(required=True, validate=validate.OneOf(ISOLATION_TIERS), metadata={
        "description": "the isolation tier of the session's sandbox"})


class SessionListSchema(Schema):
    """GET /sessions: the caller's sessions."""

    class Meta:
        unknown = RAISE

    sessions = fields.List(fields.Nested(SessionSchema), required=True)


class VariablesSchema(Schema):
    """PUT /sessions/{id}/variables: the session's variables after the change, each {type, repr, ...}."""

    class Meta:
        unknown = RAISE

    variables = fields.Dict(required=True)


class PackageInstallSchema(Schema):
    """The body of POST /packages/install."""

    class Meta:
        unknown = RAISE

    sessionId = fields.String(required=True)  # noqa: N815
    packages = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=50))
    force = StrictBoolean(load_default=False)


class ValidateSchema(Schema):
    """The body of POST /validate."""

    class Meta:
        unknown = RAISE

    code = fields.String(required=True)
    strict = StrictBoolean(load_default=False)
    includeWarnings = StrictBoolean(load_default=True)  # noqa: N815


class PackageSchema(Schema):
    """One allowlisted package; version is the preinstalled one (null: installed on request)."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    category = fields.String(required=True)
    allowedVersions = fields.String(required=True)  # noqa: N815
    description = fields.String(required=True)
    version = fields.String(required=True, allow_none=True)
    preinstalled = fields.Boolean(required=True)


class PackageListSchema(Schema):
    """GET /packages."""

    class Meta:
        unknown = RAISE

    packages = fields.List(fields.Nested(PackageSchema), required=True)


class InstalledPackageSchema(Schema):
    name = fields.String(required=True)
    version = fields.String(required=True)


class FailedPackageSchema(Schema):
    name = fields.String(required=True)
    reason = fields.String(required=True)


class InstallReportSchema(Schema):
    """POST /packages/install: what was installed and what was not, and why."""

    class Meta:
        unknown = RAISE

    installed = fields.List(fields.Nested(InstalledPackageSchema), required=True)
    failed = fields.List(fields.Nested(FailedPackageSchema), required=True)


class FindingSchema(Schema):
    """A policy violation or warning: 1-based line, 0-based column."""

    line = fields.Integer(required=True)
    col = fields.Integer(required=True)
    rule = fields.String(required=True)
    message = fields.String(required=True)


class AnalysisSchema(Schema):
    """POST /validate: valid unless errors; warnings are advice (empty unless includeWarnings)."""

    class Meta:
        unknown = RAISE

    valid = fields.Boolean(required=True)
    errors = fields.List(fields.Nested(FindingSchema), required=True)
    warnings = fields.List(fields.Nested(FindingSchema), required=True)


class AuditPageSchema(Schema):
    """GET /audit: one page of records, newest first; nextCursor fetches the next (null: the last).

    Execution records (`kind` execution, install or variables) and session records (`kind` session_create
    or session_delete, `jobId` null: variables by name and JSON size only, never values)."""

    class Meta:
        unknown = RAISE

    records = fields.List(fields.Dict(), required=True)
    count = fields.Integer(required=True)
    nextCursor = fields.String(required=True, allow_none=True)  # noqa: N815


class VersionSchema(Schema):
    """GET /version: the package's version and the API's."""

    class Meta:
        unknown = RAISE

    version = fields.String(required=True, metadata={"description": "penny-sandbox's version (PEP 440)"})
    apiVersion = fields.String(required=True,  # noqa: N815
                               metadata={"description": "the version of this API contract (info.version)"})


# The payloads of the SSE events of /execute/stream and /jobs/{id}/events (the `data:` line, JSON).

class QueuedEventSchema(Schema):
    """`queued`: the job was accepted."""

    jobId = fields.String(required=True)  # noqa: N815
    status = fields.String(required=True, validate=validate.OneOf(["queued"]))


class StartedEventSchema(Schema):
    """`started`: a worker took the job."""

    jobId = fields.String(required=True)  # noqa: N815
    worker = fields.String(required=True)


class OutputEventSchema(Schema):
    """`stdout` / `stderr`: a piece of the output, in order."""

    text = fields.String(required=True)


class PlotSchema(Schema):
    """`plot`: a figure; png and svg data are base64, plotly's is its JSON."""

    format = fields.String(required=True, validate=validate.OneOf(["png", "svg", "plotly"]))
    data = fields.Raw(required=True)
    width = fields.Integer()
    height = fields.Integer()


class DisplaySchema(Schema):
    """`display`: what display() showed: {type, repr, html?, json?}."""

    type = fields.String(required=True)
    repr = fields.String(required=True)
    html = fields.String()
    json = fields.Raw()
    png = fields.String()
    svg = fields.String()


class ResourceSampleSchema(Schema):
    """`metrics`: a sample of the sandbox's resource use while the job runs."""

    elapsedMs = fields.Integer()  # noqa: N815
    cpuPercent = fields.Float(allow_none=True)  # noqa: N815
    memoryBytes = fields.Integer(allow_none=True)  # noqa: N815
    diskBytes = fields.Integer(allow_none=True)  # noqa: N815


class FileEntrySchema(Schema):
    """One entry of a session directory (links are listed, never followed)."""

    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(["file", "directory", "symlink", "other"]))
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    mtime = fields.Integer(required=True, metadata={"description": "last modified, ms since the epoch"})


class FileListSchema(Schema):
    """GET /sessions/{id}/files."""

    class Meta:
        unknown = RAISE

    path = fields.String(required=True, metadata={"description": "the directory, relative to /workspace"})
    entries = fields.List(fields.Nested(FileEntrySchema), required=True)
    truncated = fields.Boolean(required=True, metadata={"description": "more entries than the 1000 listed"})


class FileUploadedSchema(Schema):
    """PUT /sessions/{id}/files/{path}."""

    class Meta:
        unknown = RAISE

    path = fields.String(required=True)
    size = fields.Integer(required=True, metadata={"description": "bytes written"})
    jobId = fields.String(required=True, metadata={"description": "the audited job of the upload"})  # noqa: N815


class InterruptSchema(Schema):
    """POST /sessions/{id}/interrupt."""

    class Meta:
        unknown = RAISE

    sessionId = fields.String(required=True)  # noqa: N815
    interrupted = fields.String(required=True, allow_none=True,
                                metadata={"description": "the job stopped; null when none was running or queued"})
    status = fields.String(load_default=None, allow_none=True, metadata={"description": "its final status"})
    sessionState = fields.String(load_default=None, allow_none=True)  # noqa: N815
