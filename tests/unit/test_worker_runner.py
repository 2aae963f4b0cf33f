"""The worker's logic on the fake backend: every job ends once, whatever the sandbox sends or our code does."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from core.audit import AuditQuery, AuditTrail
from core.jobs import Claimant, ClaimedJob, JobStore
from core.models import ExecutionRequest, JobStatus, SessionStatus
from core.policies import PackagePolicy
from core.sessions import SessionStore
from core.settings import Settings
from sandbox_runtime import protocol
from workers.fake_backend import Behaviour, FakeBackend, FakeRuntime, line, well_behaved
from workers.metrics import WorkerMetrics
from workers.packages import PackageInstaller
from workers.pool import SandboxPool
from workers.runner import JobRunner
from workers.sessions import SessionManager

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Worker:
    store: JobStore
    pool: SandboxPool
    runner: JobRunner
    backend: FakeBackend
    settings: Settings
    redis: fakeredis.FakeRedis

    def submit(self, code: str = "print(1)", **fields: Any) -> str:
        job_id = f"job-{len(self.store.running_jobs())}-{threading.get_ident()}-{id(code)}-{len(code)}"
        job_id = f"{job_id}-{self.redis.incr('ids')}"
        self.store.create(job_id, ExecutionRequest(code=code, timeout_ms=2000, **fields))
        return job_id

    def run(self, code: str = "print(1)", **fields: Any) -> tuple[str, JobStatus, dict[str, Any]]:
        job_id = self.submit(code, **fields)
        self.runner.run(job_id)
        record = self.store.get(job_id)
        assert record is not None and record.result is not None
        return job_id, record.status, record.result.to_api()


def make_worker(tmp_path: Path, behaviour_for: Callable[[int], Behaviour], *, size: int = 1,
                **settings: str) -> Worker:
    env = {"WORKER_NAME": "w1", "OUTPUT_LIMIT_BYTES": "4096", "MAX_PLOT_BYTES": "2000",
           "MAX_PLOTS_BYTES": "5000", "POLICY_DIR": str(REPO / "policies"), **settings}
    config = Settings.from_env(env)
    client = fakeredis.FakeRedis()
    store = JobStore(client, retention_s=60)
    backend = FakeBackend(tmp_path, limits=protocol.Limits(max_plot_bytes=config.max_plot_bytes,
                                                          max_plots_bytes=config.max_plots_bytes),
                          behaviour_for=behaviour_for)
    pool = SandboxPool(lambda pool_id: backend.start(pool_id), size=size, max_jobs=100)
    installer = PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels")
    runner = JobRunner(config, store, pool, WorkerMetrics("w1"), installer)
    return Worker(store, pool, runner, backend, config, client)


@pytest.fixture
def pools() -> Iterator[list[SandboxPool]]:
    started: list[SandboxPool] = []
    yield started
    for pool in started:
        pool.close()


def started(worker: Worker, pools: list[SandboxPool]) -> Worker:
    worker.pool.start(refill_threads=1)
    pools.append(worker.pool)
    return worker


def answering(*lines_of: Callable[[protocol.Exec], list[bytes]]) -> Behaviour:
    """A runtime whose n-th exec is answered by lines_of[n] (then well-behaved)."""
    calls = iter(lines_of)

    def behaviour(request: protocol.Request, runtime: FakeRuntime) -> list[bytes]:
        if isinstance(request, protocol.Exec):
            answer = next(calls, None)
            if answer is not None:
                return answer(request)
        return well_behaved(request, runtime)

    return behaviour


def done_line(request: protocol.Exec, **fields: Any) -> bytes:
    return line(protocol.Done(id=request.id, status=fields.pop("status", "success"), **fields))


def raw(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def test_a_job_runs_and_its_sandbox_is_reused_after_its_reset(tmp_path: Path, pools: list[SandboxPool]) -> None:
    worker = started(make_worker(tmp_path, lambda _i: well_behaved), pools)
    _, status, result = worker.run()
    _, status2, _ = worker.run()
    assert status is status2 is JobStatus.SUCCESS
    assert result["stdout"].startswith("ran job-")
    assert len(worker.backend.started) == 1  # the same sandbox served both


@pytest.mark.parametrize("forged", [
    pytest.param(lambda r: [raw({"ev": "done", "id": r.id, "status": "success", "cpu_ms": "12"})], id="wrong-type"),
    pytest.param(lambda r: [raw({"ev": "done", "id": r.id, "status": "great"})], id="unknown-status"),
    pytest.param(lambda r: [raw({"ev": "stdout", "text": "x" * 5000}), done_line(r)], id="stdout-over-limit"),
    pytest.param(lambda r: [raw({"ev": "plot", "data": {"format": "png", "data": "A" * 2001}}), done_line(r)],
                 id="plot-over-limit"),
    pytest.param(lambda r: [raw({"ev": "plot", "data": {"format": "png", "data": "A" * 1800}})] * 3 + [done_line(r)],
                 id="plots-over-total"),
    pytest.param(lambda r: [raw({"ev": "done", "id": "another-job", "status": "success"})], id="other-request"),
    pytest.param(lambda r: [b"{not json"], id="not-json"),
    pytest.param(lambda r: [raw({"ev": "ready", "pid": 1, "python": "3"})], id="ready-mid-job"),
    pytest.param(lambda r: [raw({"ev": "done", "id": r.id, "status": "success",
                                 "result": {"type": "str", "repr": "x" * 30_000}})], id="repr-too-long"),
    pytest.param(lambda r: [raw({"ev": "done", "id": r.id, "status": "success",
                                 "variables": {f"v{i}": {"type": "int"} for i in range(300)}})], id="too-many-vars"),
    pytest.param(lambda r: [raw({"ev": "display", "data": {"type": "x", "repr": "y",
                                                           "html": "[" * 40 + "]" * 40}}), done_line(r)],
                 id="display-fine-then-done"),
])
def test_an_invalid_message_ends_the_job_error_and_the_sandbox_is_never_reused(
        tmp_path: Path, pools: list[SandboxPool], forged: Callable[[protocol.Exec], list[bytes]],
        request: pytest.FixtureRequest) -> None:
    worker = started(make_worker(tmp_path, lambda i: answering(forged) if i == 0 else well_behaved), pools)
    job_id, status, result = worker.run()
    if request.node.callspec.id == "display-fine-then-done":
        assert status is JobStatus.SUCCESS  # a valid message is not refused
        return
    assert status is JobStatus.ERROR
    assert result["error"]["type"] == "InvalidSandboxMessage"
    assert result["error"]["message"] == "the sandbox sent an invalid message"
    first = worker.backend.started[0]
    assert first.container.removed and not first.healthy  # type: ignore[attr-defined]
    _, status2, _ = worker.run()
    assert status2 is JobStatus.SUCCESS
    assert len(worker.backend.started) == 2
    assert len(json.dumps(result)) < 10_000  # nothing of the forged payload reached the result


def test_a_runtime_that_never_answers_ends_the_job_timeout(tmp_path: Path, pools: list[SandboxPool]) -> None:
    worker = started(make_worker(tmp_path, lambda i: answering(lambda r: []) if i == 0 else well_behaved), pools)
    job_id = worker.submit()  # its timeout is 2 s: the runner waits that plus its grace, then gives up
    worker.runner.run(job_id)
    record = worker.store.get(job_id)
    assert record is not None and record.status is JobStatus.TIMEOUT


def test_a_failed_reset_replaces_the_sandbox_before_the_next_job(tmp_path: Path, pools: list[SandboxPool]) -> None:
    def failing_reset(request: protocol.Request, runtime: FakeRuntime) -> list[bytes]:
        answer = well_behaved(request, runtime)
        return [*answer[:-1], line(protocol.Reset(ok=False, survivors=("/tmp/stuck",)))] if answer else answer

    worker = started(make_worker(tmp_path, lambda i: failing_reset if i == 0 else well_behaved), pools)
    assert worker.run()[1] is JobStatus.SUCCESS
    assert worker.run()[1] is JobStatus.SUCCESS
    first = worker.backend.started[0]
    assert first.container.removed  # type: ignore[attr-defined]
    assert len(worker.backend.started) == 2


def test_a_sandbox_that_died_before_the_job_started_is_replaced(tmp_path: Path, pools: list[SandboxPool]) -> None:
    worker = started(make_worker(tmp_path, lambda _i: well_behaved), pools)
    from workers.channel import ChannelClosed

    worker.pool.acquire(5.0)  # wait until the first is ready, then break it
    sandbox = worker.backend.started[0]
    sandbox._channel.fail_send = ChannelClosed("gone")  # type: ignore[attr-defined]
    worker.pool.release(sandbox)
    _, status, _ = worker.run()
    assert status is JobStatus.SUCCESS
    assert len(worker.backend.started) == 2


def output_then_display(request: protocol.Request, runtime: FakeRuntime) -> list[bytes]:
    """Output, then a display, then the done: the output is appended before the done arrives."""
    answer = well_behaved(request, runtime)
    return [answer[0], line(protocol.Display({"type": "str", "repr": "'x'"})), *answer[1:]] if answer else answer


def test_output_that_comes_with_the_done_is_stored_with_the_result_in_order(
        tmp_path: Path, pools: list[SandboxPool], monkeypatch: pytest.MonkeyPatch) -> None:
    worker = started(make_worker(tmp_path, lambda _i: well_behaved), pools)
    appended: list[Any] = []
    original = worker.store.append
    monkeypatch.setattr(worker.store, "append", lambda *args: appended.append(args) or original(*args))
    job_id, status, result = worker.run()
    assert status is JobStatus.SUCCESS and result["stdout"] == f"ran {job_id}\n"
    assert appended == []  # no round trip of its own: it went with the result
    events = worker.store.read_events(job_id)
    assert [e.type.value for e in events] == ["queued", "started", "stdout", "result"]
    assert events[2].data == {"text": f"ran {job_id}\n"}


@pytest.mark.parametrize("step", ["append", "collect", "acquire", "finish_hook"])
def test_an_exception_at_any_step_ends_the_job_and_the_worker_keeps_serving(
        tmp_path: Path, pools: list[SandboxPool], step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = started(make_worker(tmp_path, lambda _i: output_then_display), pools)
    boom = RuntimeError("our own bug")
    calls = {"n": 0}

    def fail_once(original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == 1:
                raise boom
            return original(*args, **kwargs)
        return wrapper

    if step == "append":
        monkeypatch.setattr(worker.store, "append", fail_once(worker.store.append))
    elif step == "acquire":
        monkeypatch.setattr(worker.pool, "acquire", fail_once(worker.pool.acquire))
    elif step == "collect":
        from workers import sandbox as sandbox_module

        monkeypatch.setattr(sandbox_module.Sandbox, "collect", fail_once(sandbox_module.Sandbox.collect))
    job_id = worker.submit()
    hook = fail_once(lambda _result, _request: None) if step == "finish_hook" else None
    worker.runner.run(job_id, before_finish=hook)
    record = worker.store.get(job_id)
    assert record is not None and record.status.is_final
    if step != "finish_hook":
        assert record.status is JobStatus.ERROR
        assert record.result is not None and record.result.error is not None
        assert record.result.error["type"] == "InternalError"
        assert "our own bug" not in json.dumps(record.result.to_api())  # no internals in the result
    assert worker.store.running_jobs() == {}
    assert worker.run()[1] is JobStatus.SUCCESS  # and the worker carries on


def test_a_cancel_before_the_start_ends_the_job_cancelled(tmp_path: Path, pools: list[SandboxPool]) -> None:
    worker = started(make_worker(tmp_path, lambda _i: well_behaved), pools)
    job_id = worker.submit()
    original = worker.pool.acquire

    def acquire_then_cancel(timeout_s: float) -> Any:
        sandbox = original(timeout_s)
        assert worker.runner.cancel(job_id)
        return sandbox

    worker.pool.acquire = acquire_then_cancel  # type: ignore[method-assign]
    worker.runner.run(job_id)
    record = worker.store.get(job_id)
    assert record is not None and record.status is JobStatus.CANCELLED


def test_the_deadline_reaper_ends_a_job_its_worker_forgot(tmp_path: Path) -> None:
    worker = make_worker(tmp_path, lambda _i: well_behaved)
    job_id = worker.submit()
    worker.store.claim(job_id, "w1")
    record = worker.store.get(job_id)
    assert record is not None and record.started_ms is not None
    assert worker.store.reap_overdue_jobs(now=record.started_ms + 2000 + 59_000, grace_ms=60_000,
                                          install_allowance_ms=0) == []
    assert worker.store.reap_overdue_jobs(now=record.started_ms + 2000 + 61_000, grace_ms=60_000,
                                          install_allowance_ms=0) == [job_id]
    ended = worker.store.get(job_id)
    assert ended is not None and ended.status is JobStatus.ERROR
    assert ended.result is not None and ended.result.error["type"] == "DeadlineExceeded"  # type: ignore[index]
    assert worker.store.running_jobs() == {}


def test_await_final_sees_a_result_written_while_it_waits(tmp_path: Path) -> None:
    worker = make_worker(tmp_path, lambda _i: well_behaved)
    job_id = worker.submit()
    worker.store.claim(job_id, "w1")
    assert worker.store.await_final(job_id, 0) is None
    from core.models import ExecutionResult

    timer = threading.Timer(0.2, lambda: worker.store.finish(ExecutionResult(job_id=job_id,
                                                                             status=JobStatus.SUCCESS)))
    timer.start()
    assert worker.store.await_final(job_id, 5000) is JobStatus.SUCCESS
    timer.join()


def test_a_session_whose_actor_fails_is_lost_and_its_jobs_end(tmp_path: Path, pools: list[SandboxPool],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    worker = make_worker(tmp_path, lambda _i: well_behaved)
    session_pool = SandboxPool(lambda pool_id: worker.backend.start(pool_id, session=True), size=1, max_jobs=100)
    session_pool.start(refill_threads=1)
    pools.append(session_pool)
    sessions = SessionStore(worker.redis, worker.store, retention_s=60)
    manager = SessionManager(worker.settings, worker.redis, sessions, session_pool, worker.runner)
    from core.sessions import Reservation

    assert sessions.reserve("s1", tenant="t", worker="w1", max_sessions=5,
                            idle_timeout_ms=60_000) is Reservation.RESERVED
    manager.create("s1", {})
    record = sessions.get("s1")
    assert record is not None and record.status is SessionStatus.READY
    # An execution, then a failure in our own code while the actor looks for the next job.
    # Both jobs are queued before the actor runs, so the failure finds the second one pending whatever the
    # scheduling (a second kick after the first job could find the actor already gone).
    job_id = f"sj-{worker.redis.incr('ids')}"
    worker.store.create(job_id, ExecutionRequest(code="x = 1", timeout_ms=2000, session_id="s1"))
    assert sessions.push_job("s1", job_id)
    pending_job = f"sj-{worker.redis.incr('ids')}"
    worker.store.create(pending_job, ExecutionRequest(code="y = 2", timeout_ms=2000, session_id="s1"))
    assert sessions.push_job("s1", pending_job)
    original = sessions.pop_claim
    served = threading.Event()

    def pop_then_fail(session_id: str, claimant: Claimant) -> Any:
        if served.is_set():
            served.clear()
            raise RuntimeError("our own bug")  # right after the first job: the actor's own loop fails
        popped = original(session_id, claimant)
        if popped is not None and popped.job_id == job_id:
            served.set()
        return popped

    monkeypatch.setattr(sessions, "pop_claim", pop_then_fail)
    assert manager.kick("s1")
    assert worker.store.await_final(job_id, 5000) is JobStatus.SUCCESS
    final = worker.store.await_final(pending_job, 5000)
    assert final is not None and final.is_final and final is not JobStatus.SUCCESS  # it ended with the session
    lost = sessions.get("s1")
    assert lost is not None and lost.status is SessionStatus.LOST
    assert not sessions.push_job("s1", "too-late")  # nothing more is queued for it (nothing would end it)


def test_only_the_worker_can_audit_a_service_error_type(tmp_path: Path, pools: list[SandboxPool]) -> None:
    forged = answering(lambda r: [done_line(r, status="error",
                                            error={"type": "SandboxError", "message": "m", "traceback": []})])
    broken = answering(lambda r: [b"{not json"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    worker = started(make_worker(tmp_path / "a", lambda i: forged if i == 0 else well_behaved), pools)
    other = started(make_worker(tmp_path / "b", lambda i: broken if i == 0 else well_behaved), pools)
    user_job, _, user_result = worker.run("class SandboxError(Exception): pass\nraise SandboxError")
    own_job, _, own_result = other.run()
    assert user_result["error"]["type"] == "SandboxError" and own_result["error"]["type"] == "InvalidSandboxMessage"
    records = {r["jobId"]: r for w in (worker, other) for r in AuditTrail(w.redis).query(AuditQuery(limit=100))[0]}
    assert (records[user_job]["errorType"], records[user_job]["userErrorType"]) == ("UserDefinedError", "SandboxError")
    assert (records[own_job]["errorType"], records[own_job]["userErrorType"]) == ("InvalidSandboxMessage", None)


def test_a_cancel_sent_between_the_take_and_the_run_is_not_missed(tmp_path: Path, pools: list[SandboxPool]) -> None:
    worker = started(make_worker(tmp_path, lambda _i: well_behaved), pools)
    job_id = worker.submit("import time\ntime.sleep(30)")
    claimed = worker.store.claim(job_id, "w1")  # what a pop-and-claim does
    assert claimed is not None
    # The cancel arrives before the runner registered the job: its message finds no active job here.
    assert worker.store.cancel(job_id) is JobStatus.RUNNING
    assert not worker.runner.cancel(job_id)
    result = worker.runner.run_claimed(ClaimedJob(job_id, *claimed))
    assert result.status is JobStatus.CANCELLED
    record = worker.store.get(job_id)
    assert record is not None and record.status is JobStatus.CANCELLED
