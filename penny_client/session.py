"""Session: a live interpreter whose variables persist between runs; a context manager that deletes it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from penny_client import files as files_module
from penny_client.errors import NotFound, PennyClientError
from penny_client.files import FileSource, SessionFiles
from penny_client.models import ExecutionResult, InstallReport, SessionInfo, Variable

if TYPE_CHECKING:
    from penny_client.client import SandboxClient
    from penny_client.job import Job
    from penny_client.stream import EventStream

log = logging.getLogger(__name__)


class Session:
    """A session of the service: `with client.session() as s: s.run("x = 1"); s.run("x + 1").result`."""

    def __init__(self, client: SandboxClient, info: SessionInfo) -> None:
        self._client = client
        self.id = info.session_id
        self.created = info  # as the creation (or attach) answered; info() asks again

    def __repr__(self) -> str:
        return f"Session({self.id!r})"

    @property
    def isolation(self) -> str | None:
        """The isolation tier of the session's sandbox ("runc" or "gvisor"), as its creation answered."""
        return self.created.isolation

    def run(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
            packages: Sequence[str] | None = None, strict: bool | None = None,
            plot_formats: Sequence[str] | None = None, stdin: str | None = None,
            files: Mapping[str, FileSource] | None = None, output_files: Sequence[str] | None = None
            ) -> ExecutionResult:
        """Run code in the session and return its ExecutionResult (options as SandboxClient.execute)."""
        return self._client.execute(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                    strict=strict, plot_formats=plot_formats, session_id=self.id, stdin=stdin,
                                    files=files, output_files=output_files)

    @property
    def files(self) -> SessionFiles:
        """The session's /workspace: files.upload, download, list, remove."""
        return SessionFiles(self._client, self.id)

    def interrupt(self) -> dict[str, Any]:
        """Stop the running execution with KeyboardInterrupt, keeping the state: {interrupted, status, ...}."""
        return files_module.interrupt(self._client, self.id)

    def restart(self) -> SessionInfo:
        """A new interpreter for the session: variables gone, files and packages kept."""
        return files_module.restart(self._client, self.id)

    def stream(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
               packages: Sequence[str] | None = None, strict: bool | None = None,
               plot_formats: Sequence[str] | None = None) -> EventStream:
        """Run code in the session; its events as they happen."""
        return self._client.execute_stream(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                           strict=strict, plot_formats=plot_formats, session_id=self.id)

    def submit(self, code: str, *, timeout_ms: int | None = None, variables: Mapping[str, Any] | None = None,
               packages: Sequence[str] | None = None, strict: bool | None = None,
               plot_formats: Sequence[str] | None = None) -> Job:
        """Queue code in the session (it runs after the session's earlier jobs); a Job."""
        return self._client.submit(code, timeout_ms=timeout_ms, variables=variables, packages=packages,
                                   strict=strict, plot_formats=plot_formats, session_id=self.id)

    def info(self) -> SessionInfo:
        """The session's status, timestamps, execution count, variables and resource use now."""
        return self._client.session_info(self.id)

    @property
    def variables(self) -> Mapping[str, Variable]:
        """Summaries of the session's variables now (one request)."""
        return self.info().variables

    def set_variables(self, values: Mapping[str, Any] | None = None, /, **named: Any) -> dict[str, Variable]:
        """Set JSON values in the namespace, in order with the session's runs; the variables afterwards."""
        return self._client.set_session_variables(self.id, {**(values or {}), **named})

    def install(self, *packages: str, force: bool = False) -> InstallReport:
        """Install packages into the session."""
        return self._client.install_packages(self.id, list(packages), force=force)

    def delete(self) -> None:
        """Delete the session; its sandbox is destroyed at once. NotFound if it is already gone."""
        self._client.delete_session(self.id)

    def close(self) -> None:
        """Delete the session if it still exists; never raises (failures are logged)."""
        try:
            self.delete()
        except NotFound:
            pass
        except PennyClientError as exc:
            log.warning("session %s could not be deleted: %s", self.id, exc)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
