"""`penny-worker`: start one worker host (a Celery worker with a threads pool sized to the warm pool)."""

from __future__ import annotations

import sys

from core import keys
from core.errors import ConfigError
from core.settings import Settings
from workers.celery_app import create_celery


def main() -> None:
    """Read Settings from the environment and run the Celery worker until it is stopped."""
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        sys.exit(f"penny-worker: {exc}")
    app = create_celery(settings)
    app.worker_main([
        "worker",
        "--pool=threads",
        f"--concurrency={settings.pool_size}",
        f"--hostname=penny@{settings.worker_name}",
        f"--queues={keys.SHARED_QUEUE},{keys.host_queue(settings.worker_name)}",
        f"--loglevel={settings.log_level}",
        "--task-events",
        "--without-gossip",
        "--without-mingle",
    ])


if __name__ == "__main__":
    main()
