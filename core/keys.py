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

# Set of worker names that have ever sent a heartbeat (members whose heartbeat key expired are dead).
WORKERS = f"{PREFIX}:workers"


def job_key(job_id: str) -> str:
    """Hash holding a job's request, status, timestamps (ms), worker and final result."""
    return f"{PREFIX}:job:{job_id}"


def job_events_key(job_id: str) -> str:
    """Stream of a job's events (queued, started, stdout, stderr, result), read by SSE clients."""
    return f"{PREFIX}:job:{job_id}:events"


def worker_heartbeat_key(worker: str) -> str:
    """String key, alive while the worker refreshes it within heartbeat_ttl_seconds."""
    return f"{PREFIX}:worker:{worker}"
