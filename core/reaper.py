"""The reaper: jobs and sessions of workers whose heartbeat expired end `worker_lost` / `lost`.

Every worker runs it each heartbeat, and the API whenever a client waits on such a job or session, so
nothing waits forever even when every worker is gone.
"""

from __future__ import annotations

from core.jobs import JobStore, now_ms
from core.registry import WorkerRegistry
from core.sessions import SessionStore

# A running job is ended by the service this long after its own timeout, whatever its worker does.
DEADLINE_GRACE_MS = 60_000
# ... and this much later again when it installs packages (downloads and installs have their own timeouts).
INSTALL_ALLOWANCE_MS = 600_000


def reap(registry: WorkerRegistry, jobs: JobStore, sessions: SessionStore) -> tuple[list[str], list[str]]:
    """End what dead workers left, and every job past its deadline; returns (job ids, session ids). Lost
    workers are not judged right after Redis started: until the workers' next heartbeats, every worker
    would look dead."""
    overdue = jobs.reap_overdue_jobs(now=now_ms(), grace_ms=DEADLINE_GRACE_MS,
                                     install_allowance_ms=INSTALL_ALLOWANCE_MS)
    if not registry.settled():
        return overdue, []
    alive = registry.alive()
    # A worker restarted under the same name is alive, but its previous incarnation's jobs are not.
    incarnations = {name: (str(info["incarnation"]), int(info.get("startedMs", 0)))
                    for name, info in alive.items() if info.get("incarnation")}
    restarted = jobs.reap_stale_incarnations(incarnations)
    return overdue + restarted + jobs.reap_lost_jobs(alive), sessions.reap_dead_workers(alive)
