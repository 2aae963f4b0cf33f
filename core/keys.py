"""Every Redis key, channel and queue name PENNY uses, in one place."""

from __future__ import annotations

PREFIX = "penny"

# Celery: the task name and the shared queue every worker consumes (its Redis list has the queue's name).
EXECUTE_TASK = "penny.execute"
SHARED_QUEUE = "penny"

# Pub/sub channel on which the API announces cancellations to every worker.
CANCEL_CHANNEL = f"{PREFIX}:cancel"

# Hash job_id -> worker name, for jobs a worker has claimed and not finished (the reaper scans it).
RUNNING_JOBS = f"{PREFIX}:running"

# Set of worker names that have sent a heartbeat (members whose heartbeat key expired are dead; pruned
# once they have been silent for WORKER_FORGET_S) and the hash of when each was last heard (ms).
WORKERS = f"{PREFIX}:workers"
WORKERS_LAST_SEEN = f"{PREFIX}:workers:last_seen"
WORKER_FORGET_S = 600

# Hash canonical package name -> version of the sandbox image's preinstalled libraries (set by workers).
PREINSTALLED_PACKAGES = f"{PREFIX}:packages:preinstalled"

# Audit trail: hash job_id -> open record (accepted, not finished) and the bounded stream of finished ones.
AUDIT_OPEN = f"{PREFIX}:audit:open"
AUDIT_STREAM = f"{PREFIX}:audit"

# Counter of sessions ever created (for /health).
SESSIONS_CREATED = f"{PREFIX}:stats:sessions_created"


def job_key(job_id: str) -> str:
    """Hash holding a job's request, status, timestamps (ms), worker and final result."""
    return f"{PREFIX}:job:{job_id}"


def job_events_key(job_id: str) -> str:
    """Stream of a job's events (queued, started, stdout, stderr, result), read by SSE clients."""
    return f"{PREFIX}:job:{job_id}:events"


def worker_heartbeat_key(worker: str) -> str:
    """String key, alive while the worker refreshes it within heartbeat_ttl_seconds."""
    return f"{PREFIX}:worker:{worker}"

# Tasks a worker host runs from its own queue (sessions live on the host that created them).
SESSION_CREATE_TASK = "penny.session.create"
SESSION_KICK_TASK = "penny.session.kick"
SESSION_DELETE_TASK = "penny.session.delete"


def host_queue(worker: str) -> str:
    """The Celery queue only `worker` consumes: its sessions' work is routed there."""
    return f"{PREFIX}.host.{worker}"


def session_key(session_id: str) -> str:
    """Hash holding a session's owner, status, timestamps (ms), counters and last variable summary."""
    return f"{PREFIX}:session:{session_id}"


def session_jobs_key(session_id: str) -> str:
    """List of a session's job ids waiting to run, in the order they were accepted."""
    return f"{PREFIX}:session:{session_id}:jobs"


def session_created_key(session_id: str) -> str:
    """List the owner pushes one reply to when the session's sandbox is ready (or failed)."""
    return f"{PREFIX}:session:{session_id}:created"


def worker_sessions_key(worker: str) -> str:
    """Set of the session ids a worker host owns."""
    return f"{PREFIX}:worker:{worker}:sessions"


def tenant_sessions_key(tenant: str) -> str:
    """Set of a tenant's session ids (for listing)."""
    return f"{PREFIX}:tenant:{tenant}:sessions"


def tenant_active_jobs_key(tenant: str) -> str:
    """Set of a tenant's queued and running job ids (its concurrency quota counts them)."""
    return f"{PREFIX}:tenant:{tenant}:active_jobs"

# Prefix of the per-tenant request-rate counters (api.limits; the keys are made by the limits package).
RATE_LIMIT_PREFIX = f"{PREFIX}:ratelimit"


def file_transfer_key(transfer_id: str) -> str:
    """String key with the bytes of one session file on their way between the API and the worker
    (an upload the worker writes into the sandbox, or a download the API sends on); short-lived."""
    return f"{PREFIX}:transfer:{transfer_id}"


def tenant_stored_keys(tenant: str) -> tuple[str, str, str]:
    """A tenant's ledger of the bytes its jobs hold in Redis (requests, events, results) until they expire
    (core.ledger.ByteLedger: expiry zset, sizes hash, total)."""
    base = f"{PREFIX}:tenant:{tenant}:stored"
    return f"{base}:expiry", f"{base}:sizes", f"{base}:total"


def tenant_transfers_keys(tenant: str) -> tuple[str, str, str]:
    """A tenant's ledger of the transfer bytes it holds in Redis (core.session_files.FileTransfers): a sorted
    set of transfer ids by expiry (ms), a hash of their sizes (bytes), and the sizes' total."""
    base = f"{PREFIX}:tenant:{tenant}:transfers"
    return f"{base}:expiry", f"{base}:sizes", f"{base}:total"


# Fair scheduling of stateless jobs (core.fair_queue): sorted set of the tenants with queued jobs by their
# pass (jobs served, in virtual time), the hash of every tenant's pass, the virtual clock (the pass last
# served), and each tenant's own list of queued job ids (prefix + tenant).
FAIR_RING = f"{PREFIX}:fair:ring"
FAIR_PASSES = f"{PREFIX}:fair:passes"
FAIR_CLOCK = f"{PREFIX}:fair:clock"
FAIR_TENANT_PREFIX = f"{PREFIX}:fair:tenant:"


def fair_tenant_key(tenant: str) -> str:
    """List of a tenant's stateless job ids waiting for a worker, oldest first."""
    return f"{FAIR_TENANT_PREFIX}{tenant}"


def session_setup_key(session_id: str) -> str:
    """String (JSON) with a starting session's variables and packages, read once by its owner: never on the
    broker, whose messages carry ids only."""
    return f"{PREFIX}:session:{session_id}:setup"


def job_queue_key(session_id: str | None, tenant: str) -> str:
    """The list a queued job waits in: its session's, or its tenant's fair-queue list (stateless)."""
    return session_jobs_key(session_id) if session_id else fair_tenant_key(tenant)


# The queue sweep (core.queue_sweep): the sorted set of queued jobs by when each was last seen waiting where
# it should (ms; its creation at first), the lease of the worker sweeping this interval, and the doorbell
# deficit the last sweep saw.
QUEUED_JOBS = f"{PREFIX}:jobs:queued"
QUEUE_SWEEP_LEASE = f"{PREFIX}:sweep:lease"
DOORBELL_DEFICIT = f"{PREFIX}:sweep:deficit"
