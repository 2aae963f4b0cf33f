"""Isolation tiers without services: settings, the runtime check, the worker's routing by tier, the API's choice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from api.app import create_app
from api.schemas import ExecutionResultSchema, JobSchema, SessionSchema
from core import keys
from core.audit import AuditQuery, AuditTrail
from core.errors import ConfigError
from core.fair_queue import FairQueue
from core.isolation import Tier
from core.jobs import JobStore
from core.models import ExecutionRequest, ExecutionResult, JobStatus, SessionStatus
from core.policies import PackagePolicy
from core.registry import WorkerRegistry
from core.session_setup import SessionSetup, SessionSetups
from core.sessions import Reservation, SessionStore
from core.settings import Settings
from workers.fake_backend import FakeBackend
from workers.metrics import WorkerMetrics
from workers.packages import PackageInstaller
from workers.pool import SandboxPool
from workers.runner import JobRunner
from workers.runtimes import check_runtimes, missing_runtimes
from workers.sessions import SessionManager

REPO = Path(__file__).resolve().parents[2]
KEY_A, KEY_B = "a" * 32, "b" * 32


# Settings ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, message", [
    ("acme", "TENANT_ISOLATION must be a comma-separated list of tenant:tier"),
    ("acme:kata", "TENANT_ISOLATION must be a comma-separated list of tenant:tier"),
    ("acme:runsc", "TENANT_ISOLATION must be a comma-separated list of tenant:tier"),  # a runtime, not a tier
    ("ac me:gvisor", "TENANT_ISOLATION must be a comma-separated list of tenant:tier"),
    (":gvisor", "TENANT_ISOLATION must be a comma-separated list of tenant:tier"),
    ("acme:gvisor,beta:runc,acme:runc", "TENANT_ISOLATION names tenant 'acme' twice"),
])
def test_a_bad_tenant_isolation_entry_is_refused_naming_it(raw: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"TENANT_ISOLATION": raw})


@pytest.mark.parametrize("raw", ["gvisor", "kata", "", "RUNSC"])
def test_sandbox_runtime_is_runc_or_runsc_only(raw: str) -> None:
    with pytest.raises(ConfigError, match="SANDBOX_RUNTIME must be one of runc, runsc"):
        Settings.from_env({"SANDBOX_RUNTIME": raw})


def test_a_tenant_without_an_entry_gets_the_default_tier_and_every_named_tier_is_served() -> None:
    plain = Settings.from_env({})
    assert plain.default_tier is Tier.RUNC and plain.tiers == (Tier.RUNC,) and plain.tier_of("acme") is Tier.RUNC
    mixed = Settings.from_env({"TENANT_ISOLATION": " beta:gvisor , gamma:gvisor,acme:runc,", "POOL_SIZE": "3"})
    assert mixed.tier_of("beta") is mixed.tier_of("gamma") is Tier.GVISOR
    assert mixed.tier_of("acme") is mixed.tier_of("other") is Tier.RUNC
    assert mixed.tiers == (Tier.RUNC, Tier.GVISOR)
    assert mixed.pool_size_of(Tier.GVISOR) == mixed.pool_size_of(Tier.RUNC) == 3  # no GVISOR_POOL_SIZE: POOL_SIZE
    runsc = Settings.from_env({"SANDBOX_RUNTIME": "runsc", "TENANT_ISOLATION": "trusted:runc",
                               "GVISOR_POOL_SIZE": "1", "GVISOR_SESSION_POOL_SIZE": "1"})
    assert runsc.default_tier is Tier.GVISOR and runsc.tier_of("anyone") is Tier.GVISOR
    assert runsc.tier_of("trusted") is Tier.RUNC and runsc.tiers == (Tier.GVISOR, Tier.RUNC)
    assert (runsc.pool_size_of(Tier.GVISOR), runsc.pool_size_of(Tier.RUNC)) == (1, 4)
    assert (runsc.session_pool_size_of(Tier.GVISOR), runsc.session_pool_size_of(Tier.RUNC)) == (1, 2)
    with pytest.raises(ConfigError, match="GVISOR_POOL_SIZE must be >= 1"):
        Settings.from_env({"GVISOR_POOL_SIZE": "0"})


# The Docker runtime check -----------------------------------------------------------------------------------

class FakeDocker:
    def __init__(self, runtimes: dict[str, Any]) -> None:
        self.runtimes = runtimes

    def info(self) -> dict[str, Any]:
        return {"Runtimes": self.runtimes, "DefaultRuntime": "runc"}


def test_a_worker_refuses_a_tier_whose_runtime_docker_lacks_naming_it_and_how_to_install_it() -> None:
    with pytest.raises(ConfigError) as refused:
        check_runtimes(FakeDocker({"runc": {"path": "runc"}}), (Tier.RUNC, Tier.GVISOR))
    message = str(refused.value)
    assert "gvisor isolation tier" in message and "'runsc'" in message and "make gvisor" in message
    assert "its runtimes: runc" in message and "runc isolation tier" not in message
    check_runtimes(FakeDocker({"runc": {"path": "runc"}}), (Tier.RUNC,))  # a runc-only host needs no more
    check_runtimes(FakeDocker({"runc": {}, "runsc": {"path": "/usr/bin/runsc"}}), (Tier.RUNC, Tier.GVISOR))
    assert missing_runtimes({}, (Tier.GVISOR, Tier.RUNC)) == [Tier.GVISOR, Tier.RUNC]


# The worker's routing ---------------------------------------------------------------------------------------

class Tiered:
    """A worker's runner and session manager over per-tier pools of fake sandboxes."""

    def __init__(self, tmp_path: Path, tiers: tuple[Tier, ...]) -> None:
        self.settings = Settings.from_env({"WORKER_NAME": "w1", "POLICY_DIR": str(REPO / "policies")})
        self.redis = fakeredis.FakeRedis()
        self.store = JobStore(self.redis, retention_s=60)
        self.sessions = SessionStore(self.redis, self.store, retention_s=60)
        self.backend = FakeBackend(tmp_path)
        self.pools = {tier: self._pool(tier, session=False) for tier in tiers}
        self.session_pools = {tier: self._pool(tier, session=True) for tier in tiers}
        installer = PackageInstaller(PackagePolicy.load(REPO / "policies"), tmp_path / "wheels")
        self.runner = JobRunner(self.settings, self.store, self.pools, WorkerMetrics("w1"), installer)
        self.manager = SessionManager(self.settings, self.redis, self.sessions, self.session_pools, self.runner)

    def _pool(self, tier: Tier, *, session: bool) -> SandboxPool:
        pool = SandboxPool(lambda pool_id: self.backend.start(pool_id, session=session, tier=tier), size=1,
                           max_jobs=100, tier=tier)
        pool.start(refill_threads=1)
        return pool

    def submit(self, code: str = "print(1)", **fields: Any) -> str:
        job_id = f"job-{self.redis.incr('ids')}"
        self.store.create(job_id, ExecutionRequest(code=code, timeout_ms=2000, **fields))
        return job_id

    def result(self, job_id: str) -> dict[str, Any]:
        record = self.store.get(job_id)
        assert record is not None and record.result is not None
        return record.result.to_api()

    def jobs_run_by_tier(self) -> dict[Tier, int]:
        counts = dict.fromkeys(Tier, 0)
        for sandbox in self.backend.started:
            counts[self.backend.tier_of[sandbox.container_id]] += sandbox.jobs_run
        return counts

    def close(self) -> None:
        self.manager.close(drain_timeout_s=1)
        for pool in (*self.pools.values(), *self.session_pools.values()):
            pool.close()


@pytest.fixture
def both(tmp_path: Path) -> Iterator[Tiered]:
    worker = Tiered(tmp_path, (Tier.RUNC, Tier.GVISOR))
    yield worker
    worker.close()


@pytest.fixture
def runc_only(tmp_path: Path) -> Iterator[Tiered]:
    worker = Tiered(tmp_path, (Tier.RUNC,))
    yield worker
    worker.close()


def test_a_gvisor_job_takes_a_sandbox_from_the_gvisor_pool_only(both: Tiered) -> None:
    gvisor_job = both.submit(isolation="gvisor")
    both.runner.run(gvisor_job)
    result = both.result(gvisor_job)
    assert result["status"] == "success" and result["isolation"] == "gvisor"
    assert ExecutionResultSchema().validate(result) == {}
    assert both.jobs_run_by_tier() == {Tier.RUNC: 0, Tier.GVISOR: 1}
    runc_job = both.submit()  # a request without a tier is runc's
    both.runner.run(runc_job)
    assert both.result(runc_job)["isolation"] == "runc"
    assert both.jobs_run_by_tier() == {Tier.RUNC: 1, Tier.GVISOR: 1}
    records, _ = AuditTrail(both.redis).query(AuditQuery())
    assert {r["jobId"]: r["isolation"] for r in records} == {gvisor_job: "gvisor", runc_job: "runc"}


@pytest.mark.parametrize("tier", ["gvisor", "kata"])
def test_a_job_for_a_tier_the_worker_has_no_pool_for_ends_error_and_runs_nowhere(runc_only: Tiered,
                                                                                  tier: str) -> None:
    job_id = runc_only.submit("print('escaped')", isolation=tier)
    runc_only.runner.run(job_id)
    result = runc_only.result(job_id)
    assert result["status"] == "error" and result["isolation"] is None and "escaped" not in result["stdout"]
    assert result["error"]["type"] == "IsolationUnavailable"
    assert f"the {tier!r} isolation tier has no sandbox pool on worker w1 (it serves: runc)" in \
        result["error"]["message"]
    assert runc_only.jobs_run_by_tier() == {Tier.RUNC: 0, Tier.GVISOR: 0}  # no sandbox got the job
    records, _ = AuditTrail(runc_only.redis).query(AuditQuery())
    assert records[0]["errorType"] == "IsolationUnavailable" and records[0]["isolation"] is None


def reserve(worker: Tiered, session_id: str, tier: str) -> None:
    assert worker.sessions.reserve(session_id, tenant="t", worker="w1", max_sessions=5, idle_timeout_ms=60_000,
                                   isolation=tier) is Reservation.RESERVED


def create_reply(worker: Tiered, session_id: str) -> dict[str, Any]:
    reply = worker.redis.blpop([keys.session_created_key(session_id)], timeout=5)
    assert reply is not None
    return dict(json.loads(reply[1]))


def run_in_session(worker: Tiered, session_id: str, code: str, tier: str) -> dict[str, Any]:
    job_id = worker.submit(code, session_id=session_id, isolation=tier)
    assert worker.sessions.push_job(session_id, job_id)
    assert worker.manager.kick(session_id)
    assert worker.store.await_final(job_id, 5000) is not None
    return worker.result(job_id)


def test_a_gvisor_session_gets_a_gvisor_sandbox_and_runs_only_gvisor_jobs(both: Tiered) -> None:
    reserve(both, "s1", "gvisor")
    both.manager.create("s1", {}, isolation="gvisor")
    assert create_reply(both, "s1")["ok"]
    record = both.sessions.get("s1")
    assert record is not None and record.status is SessionStatus.READY and record.isolation == "gvisor"
    assert SessionSchema().validate(record.to_api()) == {}
    session_sandbox = next(iter(both.manager.container_ids().values()))
    assert both.backend.tier_of[session_sandbox] is Tier.GVISOR
    ran = run_in_session(both, "s1", "x = 1", "gvisor")
    assert ran["status"] == "success" and ran["isolation"] == "gvisor" and ran["sessionState"] == "kept"
    # A job naming another tier is not run on the session's sandbox (and the session survives).
    refused = run_in_session(both, "s1", "y = 2", "runc")
    assert refused["status"] == "error" and refused["error"]["type"] == "IsolationUnavailable"
    assert refused["isolation"] is None and refused["sessionState"] == "kept" and "y" not in refused["variables"]
    after = both.sessions.get("s1")
    assert after is not None and after.status is SessionStatus.READY and after.execution_count == 1


def test_a_session_of_a_tier_the_host_does_not_serve_is_refused_without_a_sandbox(runc_only: Tiered) -> None:
    reserve(runc_only, "s2", "gvisor")
    runc_only.manager.create("s2", {"secret": 1}, isolation="gvisor")
    reply = create_reply(runc_only, "s2")
    assert not reply["ok"] and "'gvisor' isolation tier has no session pool on worker w1" in reply["reason"]
    assert runc_only.sessions.get("s2") is None and runc_only.manager.count() == 0
    assert runc_only.manager.container_ids() == {}


# The API's choice -------------------------------------------------------------------------------------------

class RecordingDispatcher:
    """Records the tier each job and session setup reaches the worker with; runs jobs at once."""

    def __init__(self, client: fakeredis.FakeRedis) -> None:
        self.store = JobStore(client, retention_s=60)
        self.sessions = SessionStore(client, self.store, retention_s=60)
        self.setups = SessionSetups(client)
        self.redis = client
        self.tiers: dict[str, str] = {}

    def send(self, task: str, args: list[Any], queue: str) -> None:
        if task == keys.EXECUTE_TASK:
            job_id = FairQueue(self.redis).pop()
            assert job_id is not None
            self._run(job_id)
        elif task == keys.SESSION_CREATE_TASK:
            setup = self.setups.take(args[0])
            assert setup is not None
            self.tiers[args[0]] = setup.isolation
            self.sessions.set_status(args[0], SessionStatus.READY)
            self.redis.rpush(keys.session_created_key(args[0]), json.dumps({"ok": True, "worker": "fake"}))
        elif task == keys.SESSION_KICK_TASK:
            while (job_id := self.sessions.pop_job(args[0])) is not None:
                self._run(job_id)

    def _run(self, job_id: str) -> None:
        claimed = self.store.claim(job_id, "fake")
        assert claimed is not None
        request, _ = claimed
        self.tiers[job_id] = request.isolation
        self.store.finish(ExecutionResult(job_id=job_id, status=JobStatus.SUCCESS, session_id=request.session_id,
                                          worker="fake", isolation=request.isolation,
                                          session_state="kept" if request.session_id else None))


def test_the_api_gives_each_tenants_jobs_and_sessions_its_tier_and_a_client_cannot_choose() -> None:
    client = fakeredis.FakeRedis()
    WorkerRegistry(client, ttl_s=60).beat("fake", {"name": "fake", "pool": {"idle": 1}, "maxSessions": 5,
                                                    "tiers": {"runc": {}, "gvisor": {}}})
    settings = Settings(penny_api_keys=((KEY_A, "acme"), (KEY_B, "beta")), tenant_isolation=(("beta", "gvisor"),),
                        max_execution_time=5000)
    dispatcher = RecordingDispatcher(client)
    http = create_app(settings, client=client, dispatcher=dispatcher).test_client()
    a, b = ({"Authorization": f"Bearer {key}"} for key in (KEY_A, KEY_B))
    ran_a = http.post("/api/v1/execute", json={"code": "1"}, headers=a).get_json()
    ran_b = http.post("/api/v1/execute", json={"code": "1"}, headers=b).get_json()
    assert (dispatcher.tiers[ran_a["jobId"]], dispatcher.tiers[ran_b["jobId"]]) == ("runc", "gvisor")
    job = http.get(f"/api/v1/jobs/{ran_b['jobId']}", headers=b).get_json()
    assert job["isolation"] == "gvisor" and JobSchema().validate(job) == {}
    refused = http.post("/api/v1/execute", json={"code": "1", "isolation": "runc"}, headers=b)
    assert refused.status_code == 400 and "isolation" in refused.get_json()["error"]["details"]["fields"]
    created = http.post("/api/v1/sessions", json={}, headers=b)
    assert created.status_code == 201, created.get_data(as_text=True)
    session_id = created.get_json()["sessionId"]
    assert created.get_json()["isolation"] == "gvisor" and dispatcher.tiers[session_id] == "gvisor"
    assert http.get(f"/api/v1/sessions/{session_id}", headers=b).get_json()["isolation"] == "gvisor"
    in_session = http.post("/api/v1/execute", json={"code": "1", "sessionId": session_id}, headers=b).get_json()
    assert dispatcher.tiers[in_session["jobId"]] == "gvisor"
    # The operator moves beta back to runc: its gVisor session runs nothing more (409), nothing is queued.
    moved = create_app(replace(settings, tenant_isolation=()), client=client, dispatcher=dispatcher).test_client()
    stale = moved.post("/api/v1/execute", json={"code": "1", "sessionId": session_id}, headers=b)
    assert stale.status_code == 409 and stale.get_json()["error"]["details"]["tier"] == "runc"
    assert len(dispatcher.tiers) == 4  # two jobs, the session, its one job
    assert http.delete(f"/api/v1/sessions/{session_id}", headers=b).status_code == 204
    records = [json.loads(fields[b"data"]) for _, fields in client.xrange(keys.AUDIT_STREAM)]
    session_records = {r["kind"]: r["isolation"] for r in records if r["kind"].startswith("session_")}
    assert session_records == {"session_create": "gvisor", "session_delete": "gvisor"}


def test_a_session_setup_carries_its_tier_and_an_old_one_is_runc() -> None:
    assert SessionSetup.from_json(SessionSetup(isolation="gvisor").to_json()).isolation == "gvisor"
    assert SessionSetup.from_json('{"variables": {}, "packages": []}').isolation == "runc"


def test_a_session_is_placed_only_on_a_host_whose_heartbeat_lists_its_tier() -> None:
    client = fakeredis.FakeRedis()
    registry = WorkerRegistry(client, ttl_s=60)
    registry.beat("old", {"name": "old", "pool": {"idle": 1}, "maxSessions": 5})  # from before tiers: runc
    registry.beat("runc-only", {"name": "runc-only", "pool": {"idle": 1}, "maxSessions": 9, "tiers": {"runc": {}}})
    settings = Settings(penny_api_keys=((KEY_A, "acme"), (KEY_B, "beta")), tenant_isolation=(("beta", "gvisor"),))
    dispatcher = RecordingDispatcher(client)
    http = create_app(settings, client=client, dispatcher=dispatcher).test_client()
    refused = http.post("/api/v1/sessions", json={}, headers={"Authorization": f"Bearer {KEY_B}"})
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert "no live worker host serves the gvisor isolation tier" in refused.get_json()["error"]["message"]
    assert dispatcher.tiers == {}  # no host was asked
    registry.beat("both", {"name": "both", "pool": {"idle": 1}, "maxSessions": 1, "tiers": {"runc": {}, "gvisor": {}}})
    created = http.post("/api/v1/sessions", json={}, headers={"Authorization": f"Bearer {KEY_B}"})
    assert created.status_code == 201 and created.get_json()["worker"] == "both"
    runc_session = http.post("/api/v1/sessions", json={}, headers={"Authorization": f"Bearer {KEY_A}"})
    assert runc_session.status_code == 201 and runc_session.get_json()["worker"] == "runc-only"  # most free
