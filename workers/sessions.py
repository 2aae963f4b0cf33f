"""SessionManager: the sessions this worker host owns, each a dedicated sandbox and an actor thread.

Each session's jobs wait in its Redis list in the order the API accepted them. A kick (a Celery task on
this host's own queue) wakes the session's actor, which runs the listed jobs one at a time, in order.
So a second request for a busy session waits its turn; it is never refused and never overtakes.

A session's sandbox comes from the session pool of the tier its setup names (core.isolation), and its jobs
run only if they name that tier too (workers.runner); a tier this host has no pool for refuses the create.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from core import keys
from core.errors import SandboxError
from core.isolation import Tier
from core.jobs import now_ms
from core.models import ExecutionRequest, ExecutionResult, SessionStatus
from core.session_files import SessionOp
from core.sessions import SessionStore
from core.settings import Settings
from sandbox_runtime import protocol
from workers.pool import SandboxPool
from workers.runner import JobRunner, tier_named
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

CREATE_REPLY_TTL_S = 60
SANDBOX_WAIT_S = 30.0
SETUP_TIMEOUT_MS = 10_000


def installed_packages(sandbox: Sandbox) -> list[str]:
    """"name==version" of each distribution installed into the session (not the image's own), by name."""
    return sorted(f"{name}=={version}" for name, version in sandbox.packages.items()
                  if sandbox.preinstalled.get(name) != version)


def variables_after(request: ExecutionRequest, result: ExecutionResult) -> dict[str, Any] | None:
    """The session's variables after the job (None: the job did not change them)."""
    if request.session_op is not None:
        return {} if request.session_op["op"] == SessionOp.RESTART else None
    if not request.code.strip() and not request.variables:
        return None  # an install: no code ran
    if result.status.value in ("cancelled", "worker_lost") and not result.variables:
        return None  # it never ran (cancelled before it started)
    if result.isolation is None:
        return None  # no sandbox ran it (refused: another tier's job)
    return result.variables


@dataclass
class SessionActor:
    """One session: its sandbox, and the thread that runs its jobs in order."""

    session_id: str
    sandbox: Sandbox
    tier: Tier
    kicked: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    busy: bool = False
    thread: threading.Thread | None = None


class SessionManager:
    """Creates, runs, expires and deletes this host's sessions."""

    def __init__(self, settings: Settings, client: redis.Redis, sessions: SessionStore,
                 pools: SandboxPool | Mapping[Tier, SandboxPool], runner: JobRunner) -> None:
        """pools: the session pool of each tier this host serves (one pool: its own tier only)."""
        self._settings = settings
        self._redis = client
        self._sessions = sessions
        self._pools: dict[Tier, SandboxPool] = (
            {pools.tier: pools} if isinstance(pools, SandboxPool) else dict(pools))
        self._runner = runner
        self._actors: dict[str, SessionActor] = {}
        self._lock = threading.Lock()
        self._starting = 0

    def count(self) -> int:
        """Sessions owned (and being created) on this host."""
        with self._lock:
            return len(self._actors) + self._starting

    def create(self, session_id: str, variables: dict[str, Any], packages: list[str] | None = None, *,
               isolation: str = Tier.RUNC.value) -> None:
        """Dedicate a warm sandbox of tier `isolation` to a new session and tell the waiting API (its `created`
        list); a tier this host has no session pool for is refused (never served from another tier's)."""
        tier = tier_named(isolation)
        pool = self._pools.get(tier) if tier is not None else None
        if pool is None:
            served = ", ".join(t.value for t in self._pools)
            log.error("session %s: asks for the %r tier, which this host does not serve (%s)", session_id,
                      isolation, served)
            self.refuse(session_id, f"the {isolation!r} isolation tier has no session pool on worker "
                                    f"{self._settings.worker_name} (it serves: {served})")
            return
        if not self._take_slot():
            # The API frees a slot when it deletes a session's record; our delete message may still be on
            # its way (control messages run in parallel): drop what was deleted, then look again.
            self._drop_deleted()
            if not self._take_slot():
                self._reply(session_id, ok=False, reason="full")
                return
        sandbox: Sandbox | None = None
        try:
            sandbox = pool.detach(pool.acquire(SANDBOX_WAIT_S))
            if packages:
                report = self._runner.install_packages(sandbox, packages)
                if report["failed"]:
                    reasons = "; ".join(f"{f['name']}: {f['reason']}" for f in report["failed"])
                    raise SandboxError(f"packages could not be installed: {reasons}")
            summary = self._setup(sandbox, variables) if variables else {}
        except Exception as exc:
            if not isinstance(exc, SandboxError):
                log.exception("session %s: internal error while creating it", session_id)
                exc = SandboxError("internal_error: the session could not be created (it is logged)")
            if sandbox is not None:
                sandbox.destroy()
            with self._lock:
                self._starting -= 1
            self._sessions.delete(session_id)
            self._reply(session_id, ok=False, reason=str(exc))
            return
        actor = SessionActor(session_id, sandbox, pool.tier)
        actor.thread = threading.Thread(target=self._actor_loop, args=(actor,), name=f"session-{session_id[:8]}",
                                        daemon=True)
        with self._lock:
            self._starting -= 1
            self._actors[session_id] = actor
        # The view is truthful from the start: the variables given at creation and what was installed.
        self._sessions.record_execution(session_id, variables=summary, lost=False, counted=False,
                                        packages=installed_packages(sandbox))
        actor.thread.start()
        self._reply(session_id, ok=True)
        log.info("session %s created", session_id)

    def _take_slot(self) -> bool:
        with self._lock:
            if len(self._actors) + self._starting >= self._settings.max_sessions_per_host:
                return False
            self._starting += 1
            return True

    def _drop_deleted(self) -> None:
        """Retire the actors whose session record is gone (deleted through the API)."""
        with self._lock:
            actors = list(self._actors.values())
        for actor in actors:
            if self._sessions.get(actor.session_id) is None:
                self._retire(actor, None, "deleted")

    def refuse(self, session_id: str, reason: str) -> None:
        """Tell the waiting API the session cannot be created, and forget its record."""
        self._sessions.delete(session_id)
        self._reply(session_id, ok=False, reason=reason)

    def _setup(self, sandbox: Sandbox, variables: dict[str, Any]) -> dict[str, Any]:
        request = protocol.Exec(id=f"setup-{uuid.uuid4().hex}", code="", timeout_ms=SETUP_TIMEOUT_MS,
                                variables=variables, output_limit_bytes=self._settings.output_limit_bytes)
        sandbox.send(request)
        done = sandbox.collect(request, lambda _stream, _text: None)
        if done.status != "success":
            sandbox.destroy()
            raise SandboxError(f"could not set the session's variables: {done.error}")
        return dict(done.variables)

    def _reply(self, session_id: str, *, ok: bool, reason: str | None = None) -> None:
        key = keys.session_created_key(session_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.rpush(key, json.dumps({"ok": ok, "reason": reason, "worker": self._settings.worker_name}))
        pipe.expire(key, CREATE_REPLY_TTL_S)
        pipe.execute()

    def kick(self, session_id: str) -> bool:
        """Wake the session's actor to run its pending jobs; False if the session is not here."""
        with self._lock:
            actor = self._actors.get(session_id)
        if actor is None:
            # Not ours (any more): its pending jobs must not wait forever.
            self._sessions.end(session_id, SessionStatus.LOST, job_error="the session is not on its worker")
            return False
        actor.kicked.set()
        return True

    def _actor_loop(self, actor: SessionActor) -> None:
        """Run the session's jobs until it ends; an unexpected failure ends the session `lost`, and its
        pending jobs with it (the runner already ended the job that was running)."""
        try:
            self._serve_session(actor)
        except Exception:
            log.exception("session %s: internal error; the session is lost", actor.session_id)
            try:
                self._retire(actor, SessionStatus.LOST, "internal_error: the session failed (it is logged)")
            except Exception:
                log.exception("session %s: could not be retired", actor.session_id)

    def _serve_session(self, actor: SessionActor) -> None:
        while not actor.stopped.is_set():
            actor.kicked.wait(timeout=1.0)  # a kick lost on its way costs at most this wait: the list is read
            actor.kicked.clear()
            # Taking a job claims it (one step): a worker that dies now leaves it pending or running, never lost.
            while not actor.stopped.is_set() and (
                    job := self._sessions.pop_claim(actor.session_id, self._runner.claimant)) is not None:
                actor.busy = True
                self._sessions.set_status(actor.session_id, SessionStatus.BUSY)
                def record(result: ExecutionResult, request: ExecutionRequest, actor: SessionActor = actor) -> None:
                    # Before the result is visible: a client reading the session after it sees it updated.
                    self._sessions.record_execution(
                        actor.session_id, variables=variables_after(request, result),
                        lost=result.session_state == "lost",
                        counted=request.is_execution and result.isolation is not None,
                        packages=installed_packages(actor.sandbox))

                try:
                    result = self._runner.run_claimed(job, sandbox=actor.sandbox, tier=actor.tier,
                                                      before_finish=record)
                finally:
                    actor.busy = False
                if result.session_state == "lost" or not actor.sandbox.healthy:
                    self._retire(actor, SessionStatus.LOST, "the session's interpreter was lost")
                    return

    def _retire(self, actor: SessionActor, status: SessionStatus | None, message: str) -> None:
        """Stop a session's actor and destroy its sandbox; mark it `status` (None: already deleted)."""
        actor.stopped.set()
        actor.kicked.set()
        with self._lock:  # the slot is free before the container is gone (docker rm takes a while)
            if self._actors.get(actor.session_id) is not actor:
                return  # another thread retires it (a delete message and a create's clean-up may meet)
            del self._actors[actor.session_id]
        actor.sandbox.destroy()
        if status is not None:
            self._sessions.end(actor.session_id, status, job_error=message)
        log.info("session %s ended: %s", actor.session_id, message)

    def delete(self, session_id: str) -> None:
        """The API deleted the session's record: destroy its sandbox now."""
        with self._lock:
            actor = self._actors.get(session_id)
        if actor is not None:
            self._retire(actor, None, "deleted")

    def maintain(self) -> None:
        """Expire idle sessions and drop those whose record is gone (called every heartbeat)."""
        with self._lock:
            actors = list(self._actors.values())
        now = now_ms()
        for actor in actors:
            record = self._sessions.get(actor.session_id)
            if record is None:
                self._retire(actor, None, "its record is gone")
            elif not actor.busy and record.status is SessionStatus.READY and now >= record.expires_ms:
                self._retire(actor, SessionStatus.EXPIRED, "idle for too long")

    def container_ids(self) -> dict[str, str]:
        """Session id -> container id of every live session here."""
        with self._lock:
            return {sid: actor.sandbox.container_id for sid, actor in self._actors.items()}

    def close(self, *, drain_timeout_s: float) -> None:
        """Graceful shutdown: let running executions finish, then end every session as lost."""
        deadline = time.monotonic() + drain_timeout_s
        with self._lock:
            actors = list(self._actors.values())
        for actor in actors:
            actor.stopped.set()
            actor.kicked.set()
        for actor in actors:
            if actor.thread is not None:
                actor.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._retire(actor, SessionStatus.LOST, "its worker shut down")
