"""Worker incarnations: each start of a worker process is a new incarnation of its name.

Liveness is judged by name (the heartbeat key), so a worker restarted under the same name (`make run`
again, a container restart) looks alive to the reaper while the jobs and sessions of its previous process
are gone with that process. Each start therefore draws a unique incarnation id, records it in its heartbeat
and in every job it claims, and before it takes any work ends what an earlier incarnation of its name left:
its running jobs `worker_lost`, its sessions `lost` (their sandboxes died with it; the start also removes
the containers). Every reaper also ends jobs whose incarnation is not the live one (core.reaper).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from core.jobs import JobStore
from core.models import SessionStatus
from core.sessions import SessionStore

log = logging.getLogger(__name__)


def new_incarnation() -> str:
    """A fresh incarnation id (32 hex digits)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Reaped:
    """What a start ended of its name's earlier incarnations."""

    job_ids: list[str]
    session_ids: list[str]


def reap_previous(worker: str, incarnation: str, *, started_ms: int, jobs: JobStore,
                  sessions: SessionStore) -> Reaped:
    """End the jobs `worker`'s earlier incarnations left running and their sessions; call before this
    incarnation (started at started_ms) claims anything or creates a session."""
    job_ids = jobs.reap_stale_incarnations({worker: (incarnation, started_ms)})
    session_ids = sessions.ids_of_worker(worker)
    for session_id in session_ids:
        sessions.end(session_id, SessionStatus.LOST, job_error=f"worker {worker} restarted")
    for job_id in job_ids:
        log.warning("job %s: worker %s restarted while running it; ended worker_lost", job_id, worker)
    for session_id in session_ids:
        log.warning("session %s: worker %s restarted; session lost", session_id, worker)
    return Reaped(job_ids, session_ids)
