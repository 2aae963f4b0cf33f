"""Session operations that run no code: restart, and the file operations, through the sandbox's channel.

The worker never touches a path the sandbox can write: bytes move as bounded `file` requests and replies
(sandbox_runtime.files resolves the paths inside the sandbox). What the runtime answers is hostile input:
decoding bounds each reply, and here the worker counts again (a download past max_file_size_bytes, a
chunk longer than asked or a file that changes size while it is read end the operation `error`).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from core.errors import SandboxError
from core.session_files import ERROR_TYPES, TRANSFER_LIMIT, FileTransfers, SessionOp, TransferBudgetExceeded
from core.settings import Settings
from sandbox_runtime import protocol
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

# How long the runtime may take to answer one file request (a chunk of at most FILE_CHUNK_BYTES) or a restart.
CALL_TIMEOUT_S = 30.0
MAX_OUTPUT_FILES = 100


def _error(job_id: str, error_type: str, message: str, **details: Any) -> protocol.Done:
    error = {"type": error_type, "message": message, "traceback": []}
    result = {"type": "files", "repr": message, "json": details} if details else None
    return protocol.Done(id=job_id, status="error", error=error, result=result, state="kept")


def _success(job_id: str, summary: str, data: dict[str, Any]) -> protocol.Done:
    return protocol.Done(id=job_id, status="success", result={"type": "files", "repr": summary, "json": data},
                         state="kept")


class _Refused(Exception):
    def __init__(self, reply: protocol.FileReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


class SessionOps:
    """Runs a job's session_op on the session's sandbox; returns the job's `done`."""

    def __init__(self, settings: Settings, transfers: FileTransfers) -> None:
        self._settings = settings
        self._transfers = transfers

    def run(self, sandbox: Sandbox, job_id: str, op: dict[str, Any], *, tenant: str) -> protocol.Done:
        """The outcome of op for tenant (whose transfers it takes and puts); a refusal (bad path, missing file,
        over a limit, too many transfer bytes) is an `error` result, a broken sandbox raises SandboxError (the
        session is then lost)."""
        kind = SessionOp(op["op"])
        if kind is SessionOp.RESTART:
            done = sandbox.call(protocol.Restart(job_id), CALL_TIMEOUT_S)
            assert isinstance(done, protocol.Done)
            if done.status != "success":
                raise SandboxError(f"the restart failed: {done.error}")
            return protocol.Done(id=job_id, status="success", state="kept",
                                 result={"type": "restart", "repr": "the interpreter was restarted"})
        path = str(op.get("path", ""))
        try:
            if kind is SessionOp.FILES_LIST:
                return self._list(sandbox, job_id, path)
            if kind is SessionOp.FILES_GET:
                return self._get(sandbox, job_id, path, tenant)
            if kind is SessionOp.FILES_PUT:
                return self._put(sandbox, job_id, path, tenant, str(op["transfer"]), int(op["size"]))
            self._call(sandbox, protocol.FileDelete(job_id, path))
            return _success(job_id, f"{path} removed", {"path": path})
        except _Refused as refused:
            code = refused.reply.error or "io"
            details: dict[str, Any] = {"path": path, "reason": code}
            if code == "too_large":
                details["maxTotalStorage"] = self._settings.workspace_size_bytes
            return _error(job_id, ERROR_TYPES[code], refused.reply.message or code, **details)

    def write_inputs(self, sandbox: Sandbox, job_id: str, files: tuple[dict[str, Any], ...]) -> protocol.Done | None:
        """Write an execute's `files` into the workspace before its code; an `error` done if one is refused."""
        for item in files:
            data = base64.b64decode(item["content"])
            path = str(item["path"])
            try:
                self._write(sandbox, job_id, path, data)
            except _Refused as refused:
                code = refused.reply.error or "io"
                return _error(job_id, ERROR_TYPES[code], f"files: {path} was not written ({refused.reply.message})",
                              path=path, reason=code)
        return None

    def collect_outputs(self, sandbox: Sandbox, job_id: str,
                        patterns: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
        """The workspace files matching patterns, within max_file_size_bytes in all: ([{path, size, content
        (base64)}], notes on what was left out)."""
        budget = self._settings.max_file_size_bytes
        found = self._call(sandbox, protocol.FileFind(job_id, patterns))
        files: list[dict[str, Any]] = []
        notes = ["outputFiles: more files matched than could be listed; some were left out"] if found.truncated else []
        for entry in found.entries:
            path, size = str(entry["name"]), int(entry["size"])
            if len(files) >= MAX_OUTPUT_FILES or size > budget:
                notes.append(f"outputFiles: {path} ({size} bytes) was left out: over the limit of "
                             f"{MAX_OUTPUT_FILES} files and {self._settings.max_file_size_bytes} bytes in all")
                continue
            try:
                data = self._read(sandbox, job_id, path, budget)
            except _Refused as refused:
                notes.append(f"outputFiles: {path} could not be read ({refused.reply.message})")
                continue
            if data is None:
                notes.append(f"outputFiles: {path} changed or grew past the limit while it was read; left out")
                continue
            budget -= len(data)
            files.append({"path": path, "size": len(data), "content": base64.b64encode(data).decode()})
        return files, notes[:protocol.MAX_NOTES // 2]

    def _call(self, sandbox: Sandbox, request: protocol.FileRequest) -> protocol.FileReply:
        reply = sandbox.call(request, CALL_TIMEOUT_S)
        assert isinstance(reply, protocol.FileReply)
        if reply.error is not None:
            raise _Refused(reply)
        return reply

    def _list(self, sandbox: Sandbox, job_id: str, path: str) -> protocol.Done:
        reply = self._call(sandbox, protocol.FileList(job_id, path))
        return _success(job_id, f"{len(reply.entries)} entries",
                        {"path": path, "entries": list(reply.entries), "truncated": reply.truncated})

    def _read(self, sandbox: Sandbox, job_id: str, path: str, limit: int) -> bytes | None:
        """The regular file's bytes, read chunk by chunk and counted here; None if it is over limit or
        changed while it was read."""
        chunks: list[bytes] = []
        received = 0
        size: int | None = None
        while size is None or received < size:
            reply = self._call(sandbox, protocol.FileRead(job_id, path, received, protocol.FILE_CHUNK_BYTES))
            if size is None:
                size = reply.size
                if size > limit:
                    return None
                if size == 0:
                    return b""  # an empty file: nothing to read
            try:
                chunk = base64.b64decode(reply.data, validate=True)
            except (binascii.Error, ValueError):
                raise SandboxError("the sandbox sent a chunk that is not base64") from None
            if reply.size != size or not chunk or received + len(chunk) > size:
                return None
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def _get(self, sandbox: Sandbox, job_id: str, path: str, tenant: str) -> protocol.Done:
        limit = self._settings.max_file_size_bytes
        data = self._read(sandbox, job_id, path, limit)
        if data is None:
            return _error(job_id, "FileTooLarge", f"the file is over the {limit}-byte limit (or changed while read)",
                          path=path, maxFileSize=limit)
        try:
            transfer = self._transfers.put(tenant, data)
        except TransferBudgetExceeded as exc:
            return _error(job_id, TRANSFER_LIMIT, str(exc), path=path, transferBytes=exc.used,
                          maxTransferBytes=exc.budget)
        return _success(job_id, f"{path} ({len(data)} bytes)", {"path": path, "size": len(data), "transfer": transfer})

    def _put(self, sandbox: Sandbox, job_id: str, path: str, tenant: str, transfer: str,
             size: int) -> protocol.Done:
        data = self._transfers.take(tenant, transfer)
        if data is None or len(data) != size:
            return _error(job_id, "FileError", "the upload expired before the session got to it", path=path)
        limit = self._settings.max_file_size_bytes
        if size > limit:
            return _error(job_id, "FileTooLarge", f"the file has {size} bytes; the limit is {limit}",
                          path=path, size=size, maxFileSize=limit)
        self._write(sandbox, job_id, path, data)
        return _success(job_id, f"{path} ({size} bytes)", {"path": path, "size": size})

    def _write(self, sandbox: Sandbox, job_id: str, path: str, data: bytes) -> None:
        """Write data to the path in chunks (the total storage checked by the runtime on the first)."""
        size, written = len(data), 0
        for offset in range(0, max(size, 1), protocol.FILE_CHUNK_BYTES):
            chunk = data[offset:offset + protocol.FILE_CHUNK_BYTES]
            reply = self._call(sandbox, protocol.FileWrite(
                job_id, path, offset, base64.b64encode(chunk).decode(), size, self._settings.workspace_size_bytes))
            written = reply.size
        if written != size:
            raise SandboxError(f"the sandbox wrote {written} bytes of {size}")
