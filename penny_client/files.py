"""Files in the SDK: a session's files (upload, download, list, remove), interrupt and restart, and the
`files` / `outputFiles` / `stdin` of an execution.

The requests are Calls as in penny_client.calls (sent by the sync and the asyncio client alike).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from penny_client.calls import API, Call

if TYPE_CHECKING:
    from penny_client.client import SandboxClient
    from penny_client.models import SessionInfo

# A session operation waits behind the session's running execution: the service holds it up to a minute
# plus its own extra wait.
SESSION_OP_WAIT_S = 180.0

FileSource = bytes | str | os.PathLike[str]


def _path(path: str) -> str:
    return quote(path.lstrip("/").removeprefix("workspace/") if path.startswith("/workspace/") else path, safe="/")


def list_files(session_id: str, path: str = "") -> Call:
    """GET /sessions/{id}/files?path=: a directory of the session's /workspace."""
    return Call("GET", f"{API}/sessions/{quote(session_id, safe='')}/files", params={"path": path},
                wait_s=SESSION_OP_WAIT_S)


def upload_file(session_id: str, path: str, data: bytes) -> Call:
    """PUT /sessions/{id}/files/{path}: the raw bytes (parent directories are made)."""
    return Call("PUT", f"{API}/sessions/{quote(session_id, safe='')}/files/{_path(path)}", content=data,
                headers={"Content-Type": "application/octet-stream"}, wait_s=SESSION_OP_WAIT_S)


def download_file(session_id: str, path: str) -> Call:
    """GET /sessions/{id}/files/{path}: the file's bytes."""
    return Call("GET", f"{API}/sessions/{quote(session_id, safe='')}/files/{_path(path)}", wait_s=SESSION_OP_WAIT_S)


def delete_file(session_id: str, path: str) -> Call:
    """DELETE /sessions/{id}/files/{path}."""
    return Call("DELETE", f"{API}/sessions/{quote(session_id, safe='')}/files/{_path(path)}",
                wait_s=SESSION_OP_WAIT_S)


def interrupt_session(session_id: str) -> Call:
    """POST /sessions/{id}/interrupt: KeyboardInterrupt in the running execution, the state kept."""
    return Call("POST", f"{API}/sessions/{quote(session_id, safe='')}/interrupt", wait_s=10.0, retry=False)


def restart_session(session_id: str) -> Call:
    """POST /sessions/{id}/restart: a new interpreter (variables gone, files kept)."""
    return Call("POST", f"{API}/sessions/{quote(session_id, safe='')}/restart", wait_s=SESSION_OP_WAIT_S, retry=False)


def _bytes(source: FileSource) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str):
        return source.encode()
    return Path(source).read_bytes()


def execution_fields(*, stdin: str | None = None, files: Mapping[str, FileSource] | None = None,
                     output_files: Sequence[str] | None = None) -> dict[str, Any]:
    """The body fields of an execution's stdin, input files ({remote path: bytes, text or local Path}) and
    output file globs; empty when none is given."""
    fields: dict[str, Any] = {}
    if stdin is not None:
        fields["stdin"] = stdin
    if files:
        fields["files"] = [{"path": path, "content": base64.b64encode(_bytes(source)).decode()}
                           for path, source in files.items()]
    if output_files:
        fields["outputFiles"] = list(output_files)
    return fields


@dataclass(frozen=True)
class FileEntry:
    """One entry of a session directory: `type` is file, directory, symlink or other; size in bytes."""

    name: str
    type: str
    size: int
    modified: datetime

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> FileEntry:
        return cls(name=str(data["name"]), type=str(data["type"]), size=int(data["size"]),
                   modified=datetime.fromtimestamp(int(data["mtime"]) / 1000, tz=UTC))


@dataclass(frozen=True)
class OutputFile:
    """A file an execution's outputFiles matched: its path under /workspace and its bytes."""

    path: str
    content: bytes

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> OutputFile:
        return cls(path=str(data["path"]), content=base64.b64decode(str(data.get("content") or "")))

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the file under directory (its relative path kept, never outside directory)."""
        root = Path(directory).resolve()
        target = (root / self.path).resolve()
        if not target.is_relative_to(root):
            raise ValueError(f"{self.path!r} would leave {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.content)
        return target


def output_files(result_data: Mapping[str, Any]) -> tuple[OutputFile, ...]:
    """The output files of an ExecutionResult as the service sent it."""
    return tuple(OutputFile.from_api(item) for item in result_data.get("files") or ())


class SessionFiles:
    """`session.files`: the session's /workspace (each call is a job of the session, after its runs)."""

    def __init__(self, client: SandboxClient, session_id: str) -> None:
        self._client = client
        self._session_id = session_id

    def upload(self, remote: str, source: FileSource) -> int:
        """Write source (bytes, text, or a local path) to remote under /workspace; its size in bytes."""
        call = upload_file(self._session_id, remote, _bytes(source))
        return int(self._client.send(call).json()["size"])

    def download(self, remote: str, local: str | os.PathLike[str] | None = None) -> bytes:
        """The bytes of remote; also written to local when given."""
        data = self._client.send(download_file(self._session_id, remote)).content
        if local is not None:
            Path(local).write_bytes(data)
        return data

    def list(self, path: str = "") -> list[FileEntry]:
        """The entries of a directory (default: /workspace), by name."""
        data = self._client.send(list_files(self._session_id, path)).json()
        return [FileEntry.from_api(entry) for entry in data["entries"]]

    def remove(self, remote: str) -> None:
        """Remove a file (or an empty directory)."""
        self._client.send(delete_file(self._session_id, remote))


def interrupt(client: SandboxClient, session_id: str) -> dict[str, Any]:
    """Interrupt the session's running execution: {interrupted: job id or None, status, sessionState}."""
    return dict(client.send(interrupt_session(session_id)).json())


def restart(client: SandboxClient, session_id: str) -> SessionInfo:
    """Restart the session's interpreter; the session as it is now."""
    from penny_client.models import SessionInfo

    return SessionInfo.from_api(client.send(restart_session(session_id)).json())
