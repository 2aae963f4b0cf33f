"""JobRunner: takes a job id, runs its request in a pooled sandbox, streams events, stores the result."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import parse_wheel_filename

from core.errors import SandboxError
from core.jobs import JobStore, now_ms
from core.models import EventType, ExecutionRequest, ExecutionResult, JobStatus, Metrics
from core.settings import Settings
from workers.metrics import WorkerMetrics
from workers.monitor import ResourceMonitor
from workers.packages import PackageInstaller, ResolutionError
from workers.pool import SandboxPool
from workers.sandbox import Sandbox, failure_done

log = logging.getLogger(__name__)

SANDBOX_WAIT_S = 60.0


@dataclass
class ActiveJob:
    """A job this worker has taken; the lock orders `start` against a concurrent `cancel`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: bool = False
    sandbox: Sandbox | None = None

    def start_on(self, sandbox: Sandbox, request: dict[str, Any]) -> bool:
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


class JobRunner:
    """Runs jobs on this worker host; thread-safe (one call of run() per Celery thread)."""

    def __init__(self, settings: Settings, store: JobStore, pool: SandboxPool, metrics: WorkerMetrics,
                 installer: PackageInstaller) -> None:
        self._settings = settings
        self._store = store
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
            before_finish: Callable[[ExecutionResult], None] | None = None) -> ExecutionResult | None:
        """Run one job to its end and store its result; None if it was no longer queued.

        Stateless jobs take a sandbox from the pool; a session's job runs on the session's `sandbox`, and
        before_finish(result) updates the session before the client can see the result.
        """
        active = ActiveJob()
        with self._lock:
            # Registered before the claim, so a cancel published right after the claim finds it.
            self._active[job_id] = active
        try:
            claimed = self._store.claim(job_id, self._settings.worker_name)
            if claimed is None:
                return None
            request, created_ms = claimed
            started_ms = now_ms()
            log.info("job %s started on %s", job_id, self._settings.worker_name)
            if sandbox is None:
                done, stdout, stderr = self._execute_pooled(job_id, request, active)
            else:
                done, stdout, stderr = self._execute_on(sandbox, job_id, request, active)
            result = self._result(job_id, request, done, stdout, stderr, queued_ms=started_ms - created_ms)
            if before_finish is not None:
                before_finish(result)
            self._store.finish(result)
            self._metrics.finished(result.status.value, duration_ms=result.metrics.duration_ms,
                                   queued_ms=result.metrics.queued_ms)
            log.info("job %s ended %s in %s ms", job_id, result.status.value, result.metrics.duration_ms)
            return result
        finally:
            with self._lock:
                self._active.pop(job_id, None)

    def _execute_pooled(self, job_id: str, request: ExecutionRequest,
                        active: ActiveJob) -> tuple[dict[str, Any], list[str], list[str]]:
        try:
            sandbox = self._pool.acquire(SANDBOX_WAIT_S)
        except SandboxError as exc:
            return failure_done("error", "SandboxUnavailable", str(exc)), [], []
        try:
            return self._execute_on(sandbox, job_id, request, active)
        finally:
            if request.packages:
                sandbox.healthy = False  # its installed packages must not reach the next job: replace it
            self._pool.release(sandbox)

    def _execute_on(self, sandbox: Sandbox, job_id: str, request: ExecutionRequest,
                    active: ActiveJob) -> tuple[dict[str, Any], list[str], list[str]]:
        outputs: dict[str, list[str]] = {"stdout": [], "stderr": []}
        rich: dict[str, list[dict[str, Any]]] = {"plot": [], "display": []}

        def on_output(stream: str, text: str) -> None:
            outputs[stream].append(text)
            self._store.append(job_id, EventType(stream), {"text": text})

        def on_rich(kind: str, data: dict[str, Any]) -> None:
            rich[kind].append(data)
            self._store.append(job_id, EventType(kind), data)

        report: dict[str, Any] | None = None
        if request.packages:
            report = self.install_packages(sandbox, list(request.packages), force=request.force_packages)
            if report["failed"] and request.code.strip():
                reasons = "; ".join(f"{f['name']}: {f['reason']}" for f in report["failed"])
                done = failure_done("error", "PackageInstallError", f"not run: {reasons}")
                return {**done, "packages": report, "state": "kept"}, [], []
            if not request.code.strip():
                return {"status": "success", "packages": report, "state": "kept"}, [], []
        message = {"op": "exec", "code": request.code, "timeout_ms": request.timeout_ms,
                   "variables": request.variables, "output_limit_bytes": self._settings.output_limit_bytes,
                   "plot_formats": list(request.plot_formats), "max_plot_bytes": self._settings.max_plot_bytes,
                   "max_plots_bytes": self._settings.max_plots_bytes}
        try:
            if not active.start_on(sandbox, message):
                return failure_done("cancelled", "Cancelled", "cancelled before it started"), [], []
        except SandboxError as exc:
            sandbox.destroy()
            return failure_done("error", "SandboxError", f"the sandbox failed: {exc}"), [], []
        def on_sample(figures: dict[str, Any]) -> None:
            self._store.append(job_id, EventType.METRICS, figures)

        with ResourceMonitor(sandbox.container_id, on_sample):
            done = sandbox.collect(request.timeout_ms, on_output, on_rich)
        done["plots"], done["displays"], done["packages"] = rich["plot"], rich["display"], report
        return done, outputs["stdout"], outputs["stderr"]

    def install_packages(self, sandbox: Sandbox, specs: list[str], *, force: bool = False) -> dict[str, Any]:
        """Install allowlisted packages for this sandbox only; {installed, failed} per package.

        With force, packages installed earlier are fetched and installed again (preinstalled ones stay).
        """
        plan = self._installer.plan(specs, sandbox.preinstalled if force else sandbox.packages)
        try:
            self._installer.install(plan.wheels, sandbox.site_dir)
        except ResolutionError as exc:
            failed = plan.failed + [{"name": p["name"], "reason": str(exc)} for p in plan.installed]
            return {"installed": [], "failed": failed}
        for wheel in plan.wheels:
            name, version, _, _ = parse_wheel_filename(wheel.name)
            sandbox.packages[str(name)] = str(version)
        return {"installed": plan.installed, "failed": plan.failed}

    def _result(self, job_id: str, request: ExecutionRequest, done: dict[str, Any], stdout: list[str],
                stderr: list[str], *, queued_ms: int) -> ExecutionResult:
        return ExecutionResult(
            job_id=job_id,
            status=JobStatus(done["status"]),
            session_id=request.session_id,
            stdout="".join(stdout),
            stderr="".join(stderr),
            truncated=bool(done.get("truncated")),
            result=done.get("result"),
            error=done.get("error"),
            metrics=Metrics(queued_ms=max(0, queued_ms), duration_ms=int(done.get("duration_ms", 0)),
                            cpu_ms=int(done.get("cpu_ms", 0)),
                            peak_memory_bytes=int(done.get("peak_memory_bytes", 0)),
                            disk_bytes=int(done.get("disk_bytes", 0))),
            worker=self._settings.worker_name,
            variables=done.get("variables") or {},
            plots=done.get("plots") or [],
            displays=done.get("displays") or [],
            notes=done.get("notes") or [],
            packages=done.get("packages"),
            findings=[*request.findings, *([{**done["violation"], "source": "runtime", "severity": "error"}]
                                            if done.get("violation") else [])],
            # A session's state survives unless its runtime said otherwise or the sandbox itself failed.
            session_state=(done.get("state") or ("kept" if done["status"] == "cancelled" else "lost"))
            if request.session_id else None,
        )

