"""Session files: list, upload, download and remove files under the session's /workspace.

Each operation is a job of the session (api.session_control.run_session_op): in order with its
executions, audited, and done by the sandbox runtime itself over its channel (sandbox_runtime.files
resolves the path inside the sandbox, never following a link). Uploads and downloads are bounded by the
policy's maxFileSize (413 with the limit), the workspace by maxTotalStorage.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from api.apidoc import Param, Reply, documented
from api.auth import current_tenant
from api.context import services as current_services
from api.executions import live_session
from api.schemas import FileListSchema, FileUploadedSchema
from api.session_control import run_session_op
from core.errors import Conflict, Forbidden, NotFound, Overloaded, PayloadTooLarge, Unavailable, ValidationFailed
from core.session_files import SessionOp, TransferBudgetExceeded, check_path

bp = Blueprint("session_files", __name__, url_prefix="/api/v1")

STREAM_CHUNK_BYTES = 65536
MULTIPART_OVERHEAD_BYTES = 64 * 1024
TRANSFER_RETRY_AFTER_S = 5


_FILE_ERRORS = (Forbidden, NotFound, Conflict, Overloaded, ValidationFailed)


@bp.get("/sessions/<id:session_id>/files")
@documented(tag="files", errors=_FILE_ERRORS, ok=Reply(200, "the directory's entries, by name", FileListSchema),
            params=(Param("path", "query", "the directory, relative to /workspace (default: /workspace)"),))
def list_files(session_id: str) -> Response:
    """The directory `path` (default: /workspace itself): each entry's name, type, size (bytes), mtime."""
    path = check_path(request.args.get("path", ""), allow_root=True)
    data = run_session_op(current_services(), session_id, {"op": SessionOp.FILES_LIST.value, "path": path})
    return jsonify({"path": path, "entries": [_entry(e) for e in data.get("entries", [])],
                    "truncated": bool(data.get("truncated"))})


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {"name": entry["name"], "type": entry["type"], "size": entry["size"], "mtime": entry["mtime"]}


def _busy(exc: TransferBudgetExceeded) -> Overloaded:
    return Overloaded(str(exc), retry_after_s=TRANSFER_RETRY_AFTER_S,
                      details={"transferBytes": exc.used, "maxTransferBytes": exc.budget})


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the file has {size} bytes; the limit is {limit} (maxFileSize)",
                           details={"size": size, "maxFileSize": limit})


def _upload_body(limit: int) -> bytes:
    """The uploaded bytes: the raw body, or the first file of a multipart form; 413 past limit."""
    declared = request.content_length
    multipart = request.mimetype == "multipart/form-data"
    if declared is not None and declared > limit + (MULTIPART_OVERHEAD_BYTES if multipart else 0):
        raise _too_large(declared, limit)
    request.max_content_length = limit + MULTIPART_OVERHEAD_BYTES  # a body without a length is cut here
    if multipart:
        upload = next(iter(request.files.values()), None)
        if upload is None:
            raise ValidationFailed("the multipart form holds no file")
        data = upload.read(limit + 1)
    else:
        data = request.get_data(cache=False)
    if len(data) > limit:
        raise _too_large(len(data), limit)
    return data


@bp.put("/sessions/<id:session_id>/files/<filepath:file_path>")
@documented(tag="files", errors=(*_FILE_ERRORS, PayloadTooLarge), ok=Reply(201, "written", FileUploadedSchema))
def upload_file(session_id: str, file_path: str) -> tuple[Response, int]:
    """Write the body (raw bytes, or a multipart form's file) to the path, creating parent directories."""
    services = current_services()
    path = check_path(file_path)
    live_session(services, session_id)  # another tenant's session: 404 before the body is read
    data = _upload_body(services.settings.max_file_size_bytes)
    transfers, tenant = services.transfers, current_tenant()
    try:
        transfer = transfers.put(tenant, data)
    except TransferBudgetExceeded as exc:
        raise _busy(exc) from None
    try:
        result = run_session_op(services, session_id, {"op": SessionOp.FILES_PUT.value, "path": path,
                                                       "transfer": transfer, "size": len(data)})
    finally:
        transfers.discard(tenant, transfer)  # taken by the worker already, unless the job never ran
    return jsonify({"path": path, "size": result.get("size", len(data)), "jobId": result["jobId"]}), 201


@bp.get("/sessions/<id:session_id>/files/<filepath:file_path>")
@documented(tag="files", errors=(*_FILE_ERRORS, PayloadTooLarge),
            ok=Reply(200, "the file's bytes (application/octet-stream or the type its name suggests)",
                     headers={"Content-Length": "bytes", "X-Penny-Job-Id": "the audited job of the download"}))
def download_file(session_id: str, file_path: str) -> Response:
    """The file's bytes, streamed, with its content type and length."""
    services = current_services()
    path = check_path(file_path)
    result = run_session_op(services, session_id, {"op": SessionOp.FILES_GET.value, "path": path})
    data = services.transfers.take(current_tenant(), str(result.get("transfer", "")))
    if data is None:
        raise Unavailable("the file expired before it could be sent; ask again", retry_after_s=1)

    def chunks() -> Iterator[bytes]:
        view = memoryview(data)
        for offset in range(0, len(view), STREAM_CHUNK_BYTES):
            yield bytes(view[offset:offset + STREAM_CHUNK_BYTES])

    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    # Any name the sandbox allows, safely: control characters dropped, non-Latin-1 as RFC 6266 filename*.
    name = "".join(c for c in path.rsplit("/", 1)[-1] if c.isprintable()) or "file"
    fallback = "".join(c if c.isascii() and c not in '"\\' else "_" for c in name)
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(chunks(), content_type=content_type, headers={
        "Content-Length": str(len(data)), "Content-Disposition": disposition, "X-Penny-Job-Id": result["jobId"]})


@bp.delete("/sessions/<id:session_id>/files/<filepath:file_path>")
@documented(tag="files", errors=_FILE_ERRORS, ok=Reply(204, "removed"))
def delete_file(session_id: str, file_path: str) -> tuple[str, int]:
    """Remove the file (or an empty directory)."""
    run_session_op(current_services(), session_id, {"op": SessionOp.FILES_DELETE.value, "path": check_path(file_path)})
    return "", 204
