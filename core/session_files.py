"""Session files between the API and the worker: the operations, their paths, and the bytes in transit.

A file operation is a job of its session (in order with its executions, audited like them) whose request
carries a `session_op` instead of code. Its bytes do not travel in the job: an upload is put under a
transfer id before the job is queued (the worker takes it), a download is put there by the worker and
taken by the API once the job ended; either expires on its own after TRANSFER_TTL_S. The paths are
checked here (the API's 400) and again, against the file system itself, inside the sandbox
(sandbox_runtime.files).
"""

from __future__ import annotations

import base64
import binascii
import enum
import uuid
from typing import Any

import redis

from core import keys
from core.errors import PayloadTooLarge, ValidationFailed
from core.ledger import ByteLedger, OverBudget

TRANSFER_TTL_S = 300
MAX_PATH_CHARS = 4096


class SessionOp(enum.StrEnum):
    """A session job that runs no code; the values are the audit's `kind`."""

    RESTART = "restart"
    FILES_LIST = "files.list"
    FILES_GET = "files.get"
    FILES_PUT = "files.put"
    FILES_DELETE = "files.delete"


# How a refused file operation ends its job (error.type), and the HTTP answer the API gives for it.
ERROR_TYPES = {"invalid_path": "InvalidPath", "not_found": "FileNotFound", "too_large": "StorageLimit",
               "io": "FileError"}


def check_path(path: str, *, allow_root: bool = False) -> str:
    """path as the sandbox resolves it (relative to /workspace, no empty or `.` parts); 400 unless it is
    a plain relative path that stays inside (no `..`, not absolute, no NUL or backslash)."""
    if len(path) > MAX_PATH_CHARS or "\0" in path or "\\" in path or path.startswith("/"):
        raise ValidationFailed("the path must be relative to /workspace (no leading '/', NUL or backslash)",
                               details={"path": path[:200]})
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValidationFailed("the path must stay inside /workspace ('..' is refused)", details={"path": path[:200]})
    if not parts and not allow_root:
        raise ValidationFailed("a file path is required", details={"path": path})
    return "/".join(parts)


def check_pattern(pattern: str) -> str:
    """An outputFiles glob, checked like a path (`*`, `?` and `**` are plain characters to check_path)."""
    return check_path(pattern)


def input_files(files: list[dict[str, Any]], *, max_file_bytes: int) -> tuple[dict[str, Any], ...]:
    """An execute's `files` as the worker writes them: [{path, content (base64)}], each path checked and
    each file at most max_file_bytes (413)."""
    checked = []
    for item in files:
        path = check_path(item["path"])
        if item.get("text") is not None:
            data = item["text"].encode()
        else:
            try:
                data = base64.b64decode(item["content"], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationFailed(f"files: the content of {path} is not base64", details={"path": path}) from None
        if len(data) > max_file_bytes:
            raise PayloadTooLarge(f"files: {path} has {len(data)} bytes; the limit is {max_file_bytes} (maxFileSize)",
                                  details={"path": path, "size": len(data), "maxFileSize": max_file_bytes})
        checked.append({"path": path, "content": base64.b64encode(data).decode()})
    return tuple(checked)


# The error type of a file operation refused because its tenant holds too many transfer bytes (429).
TRANSFER_LIMIT = "TransferLimit"

class TransferBudgetExceeded(Exception):
    """The tenant already holds its TENANT_MAX_TRANSFER_BYTES of transfers in Redis."""

    def __init__(self, over: OverBudget) -> None:
        super().__init__(f"the tenant holds {over.used} bytes of file transfers in flight; {over.size} more would "
                         f"pass its limit of {over.budget} (TENANT_MAX_TRANSFER_BYTES)")
        self.used = over.used
        self.budget = over.budget


class FileTransfers:
    """The bytes of uploads and downloads in transit, each under its own id, counted per tenant.

    Every tenant may hold at most `budget` bytes in transit at once (uploads its sessions have not taken
    yet, downloads the API has not sent yet, until they expire): a tenant that uploads or downloads faster
    than it completes cannot fill Redis for everyone else.
    """

    def __init__(self, client: redis.Redis, *, budget: int) -> None:
        self._ledger = ByteLedger(client, keys.tenant_transfers_keys, budget=budget, ttl_s=TRANSFER_TTL_S)

    def put(self, tenant: str, data: bytes) -> str:
        """Store data for tenant (expiring after TRANSFER_TTL_S); its transfer id. Raises
        TransferBudgetExceeded (nothing stored) when the tenant's bytes in transit would pass the budget."""
        transfer_id = uuid.uuid4().hex
        try:
            self._ledger.charge(tenant, transfer_id, len(data), data_key=keys.file_transfer_key(transfer_id),
                                data=data)
        except OverBudget as over:
            raise TransferBudgetExceeded(over) from None
        return transfer_id

    def take(self, tenant: str, transfer_id: str) -> bytes | None:
        """The bytes under transfer_id, removed; None if they expired or were taken."""
        return self._ledger.release(tenant, transfer_id, data_key=keys.file_transfer_key(transfer_id))

    def discard(self, tenant: str, transfer_id: str) -> None:
        self.take(tenant, transfer_id)
