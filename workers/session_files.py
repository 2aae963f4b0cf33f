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
from core.session_files import ERROR_TYPES, FileTransfers, SessionOp
from core.settings import Settings
from sandbox_runtime import protocol
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

# How long the runtime may take to answer one file request (a chunk of at most FILE_CHUNK_BYTES) or a restart.
CALL_TIMEOUT_S = 30.0


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

    def run(self, sandbox: Sandbox, job_id: str, op: dict[str, Any]) -> protocol.Done:
        """The outcome of op; a refusal (bad path, missing file, over a limit) is an `error` result, a
        broken sandbox raises SandboxError (the session is then lost)."""
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
                return self._get(sandbox, job_id, path)
            if kind is SessionOp.FILES_PUT:
                return self._put(sandbox, job_id, path, str(op["transfer"]), int(op["size"]))
            self._call(sandbox, protocol.FileDelete(job_id, path))
            return _success(job_id, f"{path} removed", {"path": path})
        except _Refused as refused:
            code = refused.reply.error or "io"
            details: dict[str, Any] = {"path": path, "reason": code}
            if code == "too_large":
                details["maxTotalStorage"] = self._settings.workspace_size_bytes
            return _error(job_id, ERROR_TYPES[code], refused.reply.message or code, **details)

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

    def _get(self, sandbox: Sandbox, job_id: str, path: str) -> protocol.Done:
        limit = self._settings.max_file_size_bytes
        chunks: list[bytes] = []
        received = 0
        size: int | None = None
        while size is None or received < size:
            reply = self._call(sandbox, protocol.FileRead(job_id, path, received, protocol.FILE_CHUNK_BYTES))
            if size is None:
                size = reply.size
                if size > limit:
                    return _error(job_id, "FileTooLarge", f"the file has {size} bytes; the limit is {limit}",
                                  path=path, size=size, maxFileSize=limit)
            try:
                chunk = base64.b64decode(reply.data, validate=True)
            except (binascii.Error, ValueError):
                raise SandboxError("the sandbox sent a chunk that is not base64") from None
            if reply.size != size or not chunk or received + len(chunk) > size:
                return _error(job_id, "FileError", "the file changed while it was read", path=path)
            chunks.append(chunk)
            received += len(chunk)
        transfer = self._transfers.put(b"".join(chunks))
        return _success(job_id, f"{path} ({received} bytes)", {"path": path, "size": received, "transfer": transfer})

    def _put(self, sandbox: Sandbox, job_id: str, path: str, transfer: str, size: int) -> protocol.Done:
        data = self._transfers.take(transfer)
        if data is None or len(data) != size:
            return _error(job_id, "FileError", "the upload expired before the session got to it", path=path)
        limit = self._settings.max_file_size_bytes
        if size > limit:
            return _error(job_id, "FileTooLarge", f"the file has {size} bytes; the limit is {limit}",
                          path=path, size=size, maxFileSize=limit)
        written = 0
        for offset in range(0, max(size, 1), protocol.FILE_CHUNK_BYTES):
            chunk = data[offset:offset + protocol.FILE_CHUNK_BYTES]
            reply = self._call(sandbox, protocol.FileWrite(
                job_id, path, offset, base64.b64encode(chunk).decode(), size, self._settings.workspace_size_bytes))
            written = reply.size
        if written != size:
            raise SandboxError(f"the sandbox wrote {written} bytes of {size}")
        return _success(job_id, f"{path} ({size} bytes)", {"path": path, "size": size})
