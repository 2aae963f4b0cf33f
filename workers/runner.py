"""JobRunner: takes a job id, runs its request in a pooled sandbox, streams events, stores the result."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from packaging.utils import parse_wheel_filename

from core.errors import SandboxError
from core.jobs import ClaimedJob, JobStore, now_ms
from core.kernel_parent import HEAVY, kernel_parent
from core.models import EventType, ExecutionRequest, ExecutionResult, JobStatus, Metrics
from core.settings import Settings
from sandbox_runtime import protocol
from workers.metrics import WorkerMetrics
from workers.monitor import ResourceMonitor
from workers.packages import PackageInstaller, ResolutionError
from workers.pool import SandboxPool
from workers.sandbox import Sandbox, ServiceDone, failure_done, with_state
from workers.session_files import SessionOps
from workers.site import SiteConflict

log = logging.getLogger(__name__)

SANDBOX_WAIT_S = 60.0
START_ATTEMPTS = 3
INTERNAL_ERROR = ("InternalError", "internal_error: the service failed while running this job (it is logged)")


class _NotStarted(SandboxError):
    """The sandbox broke before the job reached it: the job can run on another one."""


@dataclass
class ActiveJob:
    """A job this worker has taken; the lock orders `start` against a concurrent `cancel`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: bool = False
    sandbox: Sandbox | None = None

    def start_on(self, sandbox: Sandbox, request: protocol.Exec) -> bool:
        """Send the request unless the job was cancelled first; False means it was."""
        with self.lock:
            if self.cancelled:
                return False
            sandbox.send(request)
            self.sandbox = sandbox
            return True

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.sandbox is not None:
                self.sandbox.request_cancel()


@dataclass
class Outcome:
    """What running one job produced, before it becomes an ExecutionResult."""

    done: protocol.Done
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    displays: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    # Output events that arrived with the `done`: appended to the stream just before the result.
    last_events: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)


class JobRunner:
    """Runs jobs on this worker host; thread-safe (one call of run() per Celery thread)."""

    def __init__(self, settings: Settings, store: JobStore, pool: SandboxPool, metrics: WorkerMetrics,
                 installer: PackageInstaller, *, session_ops: SessionOps | None = None,
                 incarnation: str = "") -> None:
        self._settings = settings
        self._session_ops = session_ops
        self._store = store
        # Who this worker's claims name: its name and incarnation (workers.incarnation).
        self.claimant = store.claimant(settings.worker_name, incarnation=incarnation)
        self._pool = pool
        self._metrics = metrics
        self._installer = installer
        self._active: dict[str, ActiveJob] = {}
        self._lock = threading.Lock()

    def cancel(self, job_id: str) -> bool:
        """Kill job_id if it runs here; False if it does not."""
        with self._lock:
            active = self._active.get(job_id)
        if active is None:
            return False
        active.cancel()
        return True

    def run(self, job_id: str, *, sandbox: Sandbox | None = None,
            before_finish: Callable[[ExecutionResult, ExecutionRequest], None] | None = None
            ) -> ExecutionResult | None:
        """Claim job_id and run it (run_claimed); None if it was no longer queued. Workers take their jobs
        with a pop-and-claim instead (FairQueue.pop_claim, SessionStore.pop_claim)."""
        claimed = self._store.claim(job_id, self.claimant.worker, incarnation=self.claimant.incarnation)
        if claimed is None:
            return None
        request, created_ms = claimed
        return self.run_claimed(ClaimedJob(job_id, request, created_ms), sandbox=sandbox,
                                before_finish=before_finish)

    def run_claimed(self, job: ClaimedJob, *, sandbox: Sandbox | None = None,
                    before_finish: Callable[[ExecutionResult, ExecutionRequest], None] | None = None
                    ) -> ExecutionResult:
        """Run a job this worker claimed to its end and store its result.

        Stateless jobs take a sandbox from the pool; a session's job runs on the session's `sandbox`, and
        before_finish(result, request) updates the session before the client can see the result. Whatever fails
        in our own machinery, a claimed job ends: an unexpected exception ends it `error` (InternalError,
        the traceback only in the log) and a session's sandbox is destroyed (the session is then lost).
        """
        job_id, request = job.job_id, job.request
        active = ActiveJob()
        with self._lock:
            self._active[job_id] = active
        try:
            started_ms = now_ms()
            log.info("job %s started on %s", job_id, self._settings.worker_name)
            last_events: list[tuple[EventType, dict[str, Any]]] = []
            try:
                # A cancel published between the claim and the registration above found no active job here;
                # its flag stays on the job.
                if self._store.cancel_requested(job_id):
                    active.cancel()
                if sandbox is None:
                    outcome = self._execute_pooled(job_id, request, active)
                else:
                    outcome = self._execute_on(sandbox, job_id, request, active)
                result = self._result(job_id, request, outcome, queued_ms=started_ms - job.created_ms)
                by_service = isinstance(outcome.done, ServiceDone)
                last_events = outcome.last_events
            except Exception:
                log.exception("job %s: internal error", job_id)
                if sandbox is not None:
                    sandbox.destroy()  # its interpreter's state is unknown now
                result = self._result(job_id, request, Outcome(failure_done(job_id, "error", *INTERNAL_ERROR)),
                                      queued_ms=started_ms - job.created_ms)
                by_service = True
            self._finish(result, request, before_finish, by_service=by_service, events=last_events)
            return result
        finally:
            with self._lock:
                self._active.pop(job_id, None)

    def _finish(self, result: ExecutionResult, request: ExecutionRequest,
                before_finish: Callable[[ExecutionResult, ExecutionRequest], None] | None, *,
                by_service: bool, events: list[tuple[EventType, dict[str, Any]]] | None = None) -> None:
        """End the job with result; by_service: our machinery, not the sandbox, produced its error."""
        if before_finish is not None:
            try:
                before_finish(result, request)
            except Exception:  # the session's record could not be updated: the job still ends
                log.exception("job %s: updating its session failed", result.job_id)
        self._store.finish(result, by_service=by_service, tenant=request.tenant, events=events or ())
        self._metrics.finished(result.status.value, duration_ms=result.metrics.duration_ms,
                               queued_ms=result.metrics.queued_ms)
        log.info("job %s ended %s in %s ms", result.job_id, result.status.value, result.metrics.duration_ms)

    def _execute_pooled(self, job_id: str, request: ExecutionRequest, active: ActiveJob) -> Outcome:
        """Run on a pooled sandbox; a sandbox that breaks before the job started is replaced by another."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                sandbox = self._pool.acquire(SANDBOX_WAIT_S)
            except SandboxError as exc:
                return Outcome(failure_done(job_id, "error", "SandboxUnavailable", str(exc)))
            try:
                return self._execute_on(sandbox, job_id, request, active)
            except _NotStarted as exc:
                log.warning("job %s: sandbox %s failed before the job started (%s); attempt %d",
                            job_id, sandbox.short_id, exc, attempt)
            except BaseException:
                sandbox.destroy()  # our machinery failed mid-job: its state is unknown
                raise
            finally:
                if request.packages:
                    sandbox.healthy = False  # its installed packages must not reach the next job: replace it
                self._pool.release(sandbox)
        return Outcome(failure_done(job_id, "error", "SandboxError", "no sandbox could start the job"))

    def _execute_on(self, sandbox: Sandbox, job_id: str, request: ExecutionRequest,
                    active: ActiveJob) -> Outcome:
        outcome = Outcome(failure_done(job_id, "error", *INTERNAL_ERROR))
        if request.session_op is not None:
            if self._session_ops is None:
                raise SandboxError("this worker cannot run session operations")
            try:
                outcome.done = self._session_ops.run(sandbox, job_id, request.session_op, tenant=request.tenant)
            except SandboxError as exc:
                sandbox.destroy()  # it broke the protocol or stopped answering: the session is lost
                outcome.done = with_state(failure_done(job_id, "error", "SandboxError", f"the sandbox failed: {exc}"),
                                          "lost")
            return outcome

        def on_output(stream: str, text: str) -> None:
            (outcome.stdout if stream == "stdout" else outcome.stderr).append(text)
            self._store.append(job_id, EventType(stream), {"text": text})

        def on_last_output(stream: str, text: str) -> None:
            # It came with the `done`: stored with the result, in the same step (JobStore.finish).
            (outcome.stdout if stream == "stdout" else outcome.stderr).append(text)
            outcome.last_events.append((EventType(stream), {"text": text}))

        def on_rich(kind: str, data: dict[str, Any]) -> None:
            (outcome.plots if kind == "plot" else outcome.displays).append(data)
            self._store.append(job_id, EventType(kind), data)

        if request.packages:
            outcome.packages = report = self.install_packages(sandbox, list(request.packages),
                                                              force=request.force_packages)
            if report["failed"] and request.code.strip():
                reasons = "; ".join(f"{f['name']}: {f['reason']}" for f in report["failed"])
                outcome.done = with_state(failure_done(job_id, "error", "PackageInstallError",
                                                       f"not run: {reasons}"), "kept")
                return outcome
            if not request.code.strip():
                outcome.done = protocol.Done(id=job_id, status="success", state="kept")
                return outcome
        hold = bool(request.output_files) and request.session_id is None
        if request.files or request.output_files:
            if self._session_ops is None:
                raise SandboxError("this worker cannot move files")
            try:
                refused = self._session_ops.write_inputs(sandbox, job_id, request.files)
            except SandboxError as exc:
                sandbox.destroy()
                if request.session_id is None and not request.packages:
                    raise _NotStarted(str(exc)) from exc
                outcome.done = failure_done(job_id, "error", "SandboxError", f"the sandbox failed: {exc}")
                return outcome
            if refused is not None:
                if request.session_id is None:
                    sandbox.healthy = False  # files were written and no reset follows: replace it
                outcome.done = with_state(refused, "kept") if request.session_id else refused
                return outcome
        message = protocol.Exec(id=job_id, code=request.code, timeout_ms=request.timeout_ms,
                                variables=request.variables, output_limit_bytes=self._settings.output_limit_bytes,
                                plot_formats=tuple(request.plot_formats),
                                max_plot_bytes=self._settings.max_plot_bytes,
                                max_plots_bytes=self._settings.max_plots_bytes, stdin=request.stdin, hold=hold,
                                parent=kernel_parent(request.code) if request.session_id is None else HEAVY)
        try:
            if not active.start_on(sandbox, message):
                if request.files and request.session_id is None:
                    sandbox.healthy = False  # its input files are there and no reset follows: replace it
                outcome.done = failure_done(job_id, "cancelled", "Cancelled", "cancelled before it started")
                return outcome
        except SandboxError as exc:
            sandbox.destroy()
            if request.session_id is None and not request.packages:
                raise _NotStarted(str(exc)) from exc
            outcome.done = failure_done(job_id, "error", "SandboxError", f"the sandbox failed: {exc}")
            return outcome

        def on_sample(figures: dict[str, Any]) -> None:
            self._store.append(job_id, EventType.METRICS, figures)

        with ResourceMonitor(sandbox.container_id, on_sample):
            outcome.done = sandbox.collect(message, on_output, on_rich, on_last_output=on_last_output)
        if request.output_files and sandbox.healthy and self._session_ops is not None:
            try:
                outcome.files, notes = self._session_ops.collect_outputs(sandbox, job_id, request.output_files)
            except SandboxError as exc:
                notes = [f"outputFiles: the sandbox failed while they were read ({exc})"]
            outcome.done = replace(outcome.done, notes=(*outcome.done.notes, *notes)[:protocol.MAX_NOTES])
        if hold and sandbox.healthy:
            sandbox.release()  # reset now: the pool confirms it before the sandbox's next job
        return outcome

    def install_packages(self, sandbox: Sandbox, specs: list[str], *, force: bool = False) -> dict[str, Any]:
        """Install allowlisted packages for this sandbox only; {installed, failed} per package.

        With force, packages installed earlier are fetched and installed again (preinstalled ones stay).
        """
        plan = self._installer.plan(specs, sandbox.preinstalled if force else sandbox.packages)
        try:
            # A new generation of the sandbox's site dir, swapped in whole (force: the same names replaced).
            sandbox.site.install(self._installer.trees(plan))
        except (ResolutionError, SiteConflict) as exc:
            failed = plan.failed + [{"name": p["name"], "reason": str(exc)} for p in plan.installed]
            return {"installed": [], "failed": failed}
        for wheel in plan.wheels:
            name, version, _, _ = parse_wheel_filename(wheel.name)
            sandbox.packages[str(name)] = str(version)
        return {"installed": plan.installed, "failed": plan.failed}

    def _result(self, job_id: str, request: ExecutionRequest, outcome: Outcome, *,
                queued_ms: int) -> ExecutionResult:
        done = outcome.done
        return ExecutionResult(
            job_id=job_id,
            status=JobStatus(done.status),
            session_id=request.session_id,
            stdout="".join(outcome.stdout),
            stderr="".join(outcome.stderr),
            truncated=done.truncated,
            result=done.result,
            error=done.error,
            metrics=Metrics(queued_ms=max(0, queued_ms), duration_ms=done.duration_ms, cpu_ms=done.cpu_ms,
                            peak_memory_bytes=done.peak_memory_bytes, disk_bytes=done.disk_bytes),
            worker=self._settings.worker_name,
            variables=dict(done.variables),
            plots=outcome.plots,
            displays=outcome.displays,
            notes=list(done.notes),
            packages=outcome.packages,
            files=outcome.files,
            findings=[*request.findings, *([{**done.violation, "source": "runtime", "severity": "error"}]
                                            if done.violation else [])],
            # A session's state survives unless its runtime said otherwise or the sandbox itself failed.
            session_state=(done.state or ("kept" if done.status == "cancelled" else "lost"))
            if request.session_id else None,
        )
