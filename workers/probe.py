"""The worker host's small HTTP endpoint: /metrics (Prometheus) and /healthz (liveness for Docker/K8s)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def start_probe(port: int, registry: CollectorRegistry, is_alive: Callable[[], bool]) -> ThreadingHTTPServer:
    """Serve /metrics and /healthz on 0.0.0.0:port in a daemon thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                body, status, kind = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path == "/healthz":
                alive = is_alive()
                body = json.dumps({"alive": alive}).encode()
                status, kind = (200 if alive else 503), "application/json"
            else:
                body, status, kind = b'{"error": "not found"}', 404, "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:  # scrapes are not worth a log line each
            pass

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="probe", daemon=True).start()
    return server
