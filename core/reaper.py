"""The reaper: jobs and sessions of workers whose heartbeat expired end `worker_lost` / `lost`.

Every worker runs it each heartbeat, and the API whenever a client waits on such a job or session, so
nothing waits forever even when every worker is gone.
"""

from __future__ import annotations

from core.jobs import JobStore
from core.registry import WorkerRegistry
from core.sessions import SessionStore


def reap(registry: WorkerRegistry, jobs: JobStore, sessions: SessionStore) -> tuple[list[str], list[str]]:
    """End what dead workers left; returns (job ids, session ids). Does nothing right after Redis started:
    until the workers' next heartbeats, every worker would look dead."""
    if not registry.settled():
        return [], []
    alive = registry.alive()
    return jobs.reap_lost_jobs(alive), sessions.reap_dead_workers(alive)
