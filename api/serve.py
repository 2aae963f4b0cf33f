"""`penny-api`: serve the API with gunicorn and gevent workers on SANDBOX_PORT."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from core.errors import ConfigError
from core.redis_client import verify as verify_redis
from core.settings import Settings

log = logging.getLogger("penny.api")


class PennyApi(BaseApplication):  # type: ignore[misc]
    """Gunicorn application that builds the Flask app in each worker (after gevent has patched)."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app

        return create_app(self._settings)


def _start_audit_archiver(settings: Settings) -> None:
    """In each API process (after gevent patched it): copy the audit stream to AUDIT_LOG_PATH."""
    import gevent

    from api.metrics import AUDIT_WRITE_FAILURES
    from core.audit import AuditArchiver
    from core.redis_client import connect

    client = connect(settings, socket_connect_timeout=2, health_check_interval=30)
    AuditArchiver(client, settings.audit_log_path, on_failure=AUDIT_WRITE_FAILURES.inc,
                  offload=lambda work: gevent.get_hub().threadpool.apply(work)).start()


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def bind_address(host: str, port: int) -> str:
    """Gunicorn's `host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def main() -> None:
    """Read Settings, warn when the service runs open, and serve until stopped."""
    try:
        settings = Settings.from_env()
        settings.check_api_binding()  # an open API listens beyond loopback only with PENNY_ALLOW_OPEN=true
        verify_redis(settings)  # a wrong password or TLS setting stops here, not in every request
    except ConfigError as exc:
        sys.exit(f"penny-api: {exc}")
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Gunicorn runs several API processes: their Prometheus metrics meet in one directory (multiprocess mode).
    metrics_dir = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                             tempfile.mkdtemp(prefix="penny-api-metrics-")))
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    options = {
        "bind": bind_address(settings.sandbox_host, settings.sandbox_port),
        "workers": settings.api_workers,
        "worker_class": "gevent",
        "worker_connections": 2000,
        "timeout": 60,
        "graceful_timeout": 30,
        "keepalive": 30,
        "loglevel": settings.log_level.lower(),
        "child_exit": _child_exit,
        "post_worker_init": lambda _worker: _start_audit_archiver(settings),
    }
    log.info("serving on %s with %d gevent workers (%s)", options["bind"], settings.api_workers,
             "OPEN: no API keys" if settings.api_open else "API keys required")
    PennyApi(settings, options).run()


if __name__ == "__main__":
    main()
