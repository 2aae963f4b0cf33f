"""Start and stop the PENNY processes on one machine: Redis, the API, worker hosts and Flower.

Used by `make run` (python deploy/stack.py), by the integration tests and by the benchmark, so all three
start the service the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def wait_until(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll predicate until true; fail with `what` on timeout or when proc exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {proc.returncode}")
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not ready after {timeout_s:.0f} s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500 or exc.code == 503  # up, but maybe without workers yet
    except OSError:
        return False


def worker_ready(redis_url: str, name: str) -> bool:
    """The worker's heartbeat says its pool has at least one idle sandbox."""
    import json

    raw = redis.Redis.from_url(redis_url).get(f"penny:worker:{name}")
    return bool(raw) and json.loads(raw)["pool"]["idle"] > 0


@dataclass
class Stack:
    """The processes this Stack started (and only those), stopped in reverse order by close()."""

    env: dict[str, str]
    log_dir: Path
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)

    def env_of(self, name: str) -> dict[str, str]:
        """The environment a process of this stack was started with, by its name (e.g. "worker-host-1")."""
        return self.envs[name]

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the process)
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))
        self.envs[name] = env
        return proc

    def start_redis(self, port: int) -> str:
        url = f"redis://127.0.0.1:{port}/0"
        data_dir = self.log_dir / f"redis-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        # Append-only file, fsync every second: a Redis restart loses no accepted job.
        proc = self._spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir)],
                           self.env)
        wait_until(lambda: redis_alive(url), 20, "redis", proc)
        return url

    def start_api(self, **overrides: str) -> subprocess.Popen:
        env = {**self.env, **overrides}
        proc = self._spawn("api", [PYTHON, "-m", "api.serve"], env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{env['SANDBOX_PORT']}/health"), 30, "api", proc)
        return proc

    def start_worker(self, name: str, *, wait_ready: bool = True, **overrides: str) -> subprocess.Popen:
        env = {**self.env, "WORKER_NAME": name, "WORKER_METRICS_PORT": str(free_port()), **overrides}
        proc = self._spawn(f"worker-{name}", [PYTHON, "-m", "workers.serve"], env)
        if wait_ready:
            wait_until(lambda: worker_ready(env["REDIS_URL"], name), 120, f"worker {name}", proc)
        return proc

    def start_flower(self, port: int) -> subprocess.Popen:
        celery = str(Path(PYTHON).with_name("celery"))
        # The HTTP API without auth, as for local development; put Flower behind auth in production.
        env = {**self.env, "FLOWER_UNAUTHENTICATED_API": "true"}
        proc = self._spawn("flower", [celery, f"--broker={self.env['REDIS_URL']}", "flower",
                                      f"--port={port}", "--address=0.0.0.0"], env)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/"), 60, "flower", proc)
        return proc

    def stop(self, proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout_s: float = 30) -> None:
        """Signal one process (and its group) and wait for it, SIGKILL after timeout_s."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        for _, proc in reversed(self.procs):
            self.stop(proc)
        self.procs.clear()


@contextlib.contextmanager
def local_stack(*, workers: int = 1, api_port: int | None = None, flower_port: int | None = None,
                redis_url: str | None = None, log_dir: Path | None = None, worker_prefix: str | None = None,
                **settings: str) -> Iterator[tuple[Stack, str]]:
    """Redis (the one at redis_url if it answers, else our own), the API, workers; yields (stack, api url)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="penny-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **settings}
    env.pop("WORKER_NAME", None)
    env.setdefault("AUDIT_LOG_PATH", str(log_dir / "audit.jsonl"))
    stack = Stack(env, log_dir)
    try:
        if redis_url and redis_alive(redis_url):
            env["REDIS_URL"] = redis_url
        else:
            if shutil.which("redis-server") is None:
                raise RuntimeError("redis-server is not installed (make run installs it)")
            port = int(redis_url.rsplit(":", 1)[1].split("/")[0]) if redis_url else free_port()
            env["REDIS_URL"] = stack.start_redis(port)
        env["SANDBOX_PORT"] = str(api_port or free_port())
        host = worker_prefix or socket.gethostname()
        for index in range(workers):
            stack.start_worker(f"{host}-{index + 1}" if workers > 1 else host)
        stack.start_api()
        if flower_port:
            stack.start_flower(flower_port)
        yield stack, f"http://127.0.0.1:{env['SANDBOX_PORT']}"
    finally:
        stack.close()


def main() -> None:
    """`make run`: the whole service in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    port = int(os.environ.get("SANDBOX_PORT", "3003"))
    log_dir = REPO / ".cache" / "logs"
    print(f"penny: starting (logs in {log_dir})", flush=True)
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    with local_stack(workers=args.workers, api_port=port, flower_port=5555, redis_url=redis_url,
                     log_dir=log_dir) as (stack, url):
        print(f"penny: API on {url}  (try: curl -s {url}/api/v1/execute -H 'content-type: application/json'"
              f" -d '{{\"code\": \"print(6*7)\"}}')", flush=True)
        print("penny: Flower on http://127.0.0.1:5555 ; Ctrl-C stops everything", flush=True)
        try:
            while not stopping and all(proc.poll() is None for _, proc in stack.procs):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        # A second Ctrl-C must not cut the clean-up short (our processes run in sessions of their own).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for name, proc in stack.procs:
            if proc.poll() is not None:
                print(f"penny: {name} exited with {proc.returncode}; see {log_dir / (name + '.log')}")
        print("penny: stopping", flush=True)


if __name__ == "__main__":
    main()
