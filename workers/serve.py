"""`penny-worker`: start one worker host (a Celery worker with a threads pool sized to the warm pools)."""

from __future__ import annotations

import sys
from pathlib import Path

import docker
import docker.errors

from core import keys
from core.errors import ConfigError
from core.policies import PackagePolicy
from core.redis_client import verify as verify_redis
from core.settings import Settings
from workers import egress
from workers.celery_app import create_celery
from workers.hardening import runtime_policy
from workers.runtimes import check_runtimes


def main() -> None:
    """Read Settings from the environment and run the Celery worker until it is stopped."""
    try:
        settings = Settings.from_env()
        # A tier whose Docker runtime is missing (runsc for gVisor) stops start-up here, naming it.
        check_runtimes(docker.from_env(timeout=60), settings.tiers)
        verify_redis(settings)  # a wrong password or TLS setting stops here (Celery would retry forever)
        # Bad policy files stop start-up here (in Celery's worker_init they would only be logged).
        runtime_policy(settings.policy_dir)
        PackagePolicy.load(Path(settings.policy_dir))
        if settings.enable_networking:  # before Celery, whose worker_init would only log a failure
            egress.ensure(docker.from_env(timeout=60), egress.EgressNetwork.from_settings(settings))
    except (ConfigError, docker.errors.DockerException) as exc:
        sys.exit(f"penny-worker: {exc}")
    app = create_celery(settings)
    app.worker_main([
        "worker",
        "--pool=threads",
        # One thread per warm stateless sandbox of every tier: each tier's jobs can run side by side.
        f"--concurrency={sum(settings.pool_size_of(tier) for tier in settings.tiers)}",
        f"--hostname=penny@{settings.worker_name}",
        # Only the stateless jobs' queue: the host's own queue (session control) has its own consumer and
        # threads (workers.control), so it never waits behind executions.
        f"--queues={keys.SHARED_QUEUE}",
        f"--loglevel={settings.log_level}",
        "--task-events",
        "--without-gossip",
        "--without-mingle",
    ])


if __name__ == "__main__":
    main()
