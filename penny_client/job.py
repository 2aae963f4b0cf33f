"""Job: a handle on a queued or running execution, to wait for, follow or cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

from penny_client.models import ExecutionResult, JobInfo, JobStatus

if TYPE_CHECKING:
    from penny_client.client import SandboxClient
    from penny_client.stream import EventStream


class Job:
    """An execution submitted with SandboxClient.submit (or found with SandboxClient.job)."""

    def __init__(self, client: SandboxClient, job_id: str) -> None:
        self._client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def info(self) -> JobInfo:
        """Where the job is now, and its result once final."""
        return self._client.job_info(self.id)

    @property
    def status(self) -> JobStatus:
        """The job's status now (one request)."""
        return self.info().status

    def events(self, *, last_event_id: str | None = None) -> EventStream:
        """The job's events from the start (or after last_event_id), resumed if the connection drops."""
        return self._client.job_events(self.id, last_event_id=last_event_id)

    def wait(self) -> ExecutionResult:
        """Block until the job ended; its ExecutionResult (read from its event stream, no polling)."""
        with self.events() as events:
            return events.until_result()

    def cancel(self) -> str:
        """Cancel the job: a queued one never runs, a running one is killed. Conflict if it already ended."""
        return self._client.cancel_job(self.id)
