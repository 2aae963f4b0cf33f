"""Start and stop the PENNY processes on one machine: Redis, the API, worker hosts and Flower.

Used by `make run` (python deploy/stack.py), by the integration tests and by the benchmark, so all three
start the service the same way. Each process runs in a session of its own, so a Ctrl-C in the terminal reaches
only `make` and this script, which then stops them in order: Flower and the API (no new jobs), the workers
(they finish their running jobs and destroy their pools), any sandbox container a worker left, then the Redis
this stack started (never a Redis it found at REDIS_URL).
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from core.errors import ConfigError
from core.redis_client import RedisEndpoint
from core.settings import Settings, is_loopback

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# How long a stopping process may take before SIGKILL, in seconds. A worker finishes its running jobs (up to
# MAX_EXECUTION_TIME, 30 s by default) and drains its sessions' executions before it leaves.
STOP_TIMEOUT_S = 30.0
WORKER_STOP_TIMEOUT_S = 90.0
# The labels every sandbox container carries (workers.hardening LABEL_SANDBOX / LABEL_WORKER); repeated here
# so that this script does not import the worker package.
LABEL_SANDBOX = "penny.sandbox"
LABEL_WORKER = "penny.worker"


class StackStopped(Exception):
    """A stop was requested (Ctrl-C, SIGTERM) while the stack was still starting."""


def never() -> bool:
    return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def url_host(bind_host: str) -> str:
    """The host part of a URL that reaches a server bound to bind_host (a wildcard: via loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(bind_host, bind_host)
    return f"[{host}]" if ":" in host else host


def reach(bind_host: str) -> str:
    """Who can connect to a server bound to bind_host, in words."""
    return "this machine only" if is_loopback(bind_host) else "beyond this machine"


def redis_alive(url: str) -> bool:
    """A Redis without credentials or TLS (the one start_redis starts) answers at url."""
    try:
        return RedisEndpoint(url).verify(timeout_s=1)
    except ConfigError:
        return False


def redis_endpoint(env: Mapping[str, str]) -> RedisEndpoint:
    """REDIS_URL with REDIS_TLS_* as the stack's processes read them; RuntimeError naming a bad setting."""
    try:
        return RedisEndpoint.from_settings(Settings.from_env(env))
    except ConfigError as exc:
        raise RuntimeError(str(exc)) from None


def wait_until(predicate, timeout_s: float, what: str, proc: subprocess.Popen | None = None, *,
               cancelled: Callable[[], bool] = never) -> None:
    """Poll predicate until true; fail with `what` on timeout or when proc exits first; raise StackStopped
    as soon as cancelled() is true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cancelled():
            raise StackStopped(f"{what}: stopped while starting")
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


def worker_ready(client: redis.Redis, name: str) -> bool:
    """The worker's heartbeat says its pool has at least one idle sandbox."""
    import json

    raw = client.get(f"penny:worker:{name}")
    return bool(raw) and json.loads(raw)["pool"]["idle"] > 0


@dataclass
class Stack:
    """The processes this Stack started (and only those), stopped in order by close(); cancelled() true makes
    a start that is still waiting give up (StackStopped)."""

    env: dict[str, str]
    log_dir: Path
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    worker_names: list[str] = field(default_factory=list)
    cancelled: Callable[[], bool] = never
    _redis: tuple[str, redis.Redis] | None = field(default=None, repr=False)

    def redis_client(self) -> redis.Redis:
        """A client of this stack's Redis (REDIS_URL with its credentials and TLS), made once per URL."""
        url = self.env["REDIS_URL"]
        if self._redis is None or self._redis[0] != url:
            self._redis = (url, redis_endpoint(self.env).client(socket_connect_timeout=2, socket_timeout=5))
        return self._redis[1]

    def env_of(self, name: str) -> dict[str, str]:
        """The environment a process of this stack was started with, by its name (e.g. "worker-host-1")."""
        return self.envs[name]

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the process)
        # A session of its own: the terminal's Ctrl-C never reaches it, close() stops it when its turn comes.
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
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
        wait_until(lambda: redis_alive(url), 20, "redis", proc, cancelled=self.cancelled)
        return url

    def start_api(self, **overrides: str) -> subprocess.Popen:
        env = {**self.env, **overrides}
        proc = self._spawn("api", [PYTHON, "-m", "api.serve"], env)
        host = url_host(env.get("SANDBOX_HOST", "127.0.0.1"))
        wait_until(lambda: http_ok(f"http://{host}:{env['SANDBOX_PORT']}/health"), 30, "api", proc,
                   cancelled=self.cancelled)
        return proc

    def start_worker(self, name: str, *, wait_ready: bool = True, **overrides: str) -> subprocess.Popen:
        env = {**self.env, "WORKER_NAME": name, "WORKER_METRICS_PORT": str(free_port()), **overrides}
        self.worker_names.append(name)
        proc = self._spawn(f"worker-{name}", [PYTHON, "-m", "workers.serve"], env)
        if wait_ready:
            wait_until(lambda: worker_ready(self.redis_client(), name), 120, f"worker {name}", proc,
                       cancelled=self.cancelled)
        return proc

    def start_flower(self, port: int) -> subprocess.Popen:
        """Flower on FLOWER_HOST (default 127.0.0.1); elsewhere only with FLOWER_BASIC_AUTH (which Flower reads
        from the environment itself) or PENNY_ALLOW_OPEN=true, else ConfigError."""
        settings = Settings.from_env(self.env)
        settings.check_flower_binding()
        celery = str(Path(PYTHON).with_name("celery"))
        env = dict(self.env)
        if not settings.flower_basic_auth:
            # No credentials (loopback, or open on purpose): Flower's HTTP API without auth, for local use.
            env["FLOWER_UNAUTHENTICATED_API"] = "true"
        # The broker, its credentials and TLS come from REDIS_URL and REDIS_TLS_* through workers.flower_app
        # (never on the command line, where `ps` would show the password).
        proc = self._spawn("flower", [celery, "-A", "workers.flower_app", "flower",
                                      f"--port={port}", f"--address={settings.flower_host}"], env)
        host = url_host(settings.flower_host)
        wait_until(lambda: http_ok(f"http://{host}:{port}/"), 60, "flower", proc, cancelled=self.cancelled)
        return proc

    def stop(self, proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Signal one process (and its group) and wait for it, SIGKILL after timeout_s."""
        self._stop_together([proc], sig=sig, timeout_s=timeout_s)

    @staticmethod
    def _stop_together(procs: list[subprocess.Popen], *, sig: int = signal.SIGTERM,
                       timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Signal every process's group at once (gunicorn's workers with their master), wait for all of them,
        SIGKILL the groups still there after timeout_s (seconds)."""
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        deadline = time.monotonic() + timeout_s
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def remove_sandboxes(self) -> int:
        """Remove every sandbox container of this stack's workers (those a killed worker left); never raises."""
        if not self.worker_names:
            return 0
        removed = 0
        try:
            import docker  # here: the API-only users of this module need no Docker client

            client = docker.from_env(timeout=60)
            for name in self.worker_names:
                filters = {"label": [f"{LABEL_SANDBOX}=1", f"{LABEL_WORKER}={name}"]}
                for container in client.containers.list(all=True, sparse=True, filters=filters):
                    with contextlib.suppress(docker.errors.NotFound):
                        container.remove(force=True)
                        removed += 1
        except Exception as exc:  # noqa: BLE001 (clean-up goes on: Redis must still be stopped)
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                print(f"penny: could not remove the sandbox containers: {exc}", file=sys.stderr, flush=True)
        return removed

    def close(self) -> None:
        """Stop everything this stack started, in order: Flower and the API, the workers, their leftover
        sandboxes, Redis. Never raises."""
        workers = [proc for name, proc in self.procs if name.startswith("worker-")]
        redis_procs = [proc for name, proc in self.procs if name == "redis"]
        front = [proc for _, proc in self.procs if proc not in workers and proc not in redis_procs]
        self._stop_together(front)
        self._stop_together(workers, timeout_s=WORKER_STOP_TIMEOUT_S)
        self.remove_sandboxes()
        self._stop_together(redis_procs)
        self.procs.clear()


@contextlib.contextmanager
def local_stack(*, workers: int = 1, api_port: int | None = None, flower_port: int | None = None,
                redis_url: str | None = None, log_dir: Path | None = None, worker_prefix: str | None = None,
                cancelled: Callable[[], bool] = never, **settings: str) -> Iterator[tuple[Stack, str]]:
    """Redis (the one at redis_url if it answers, else our own), the API, workers; yields (stack, api url).
    A Redis that refuses redis_url's credentials or TLS (REDIS_TLS_* in settings), or a rediss:// or
    credentialed redis_url that does not answer, raises RuntimeError naming REDIS_URL, password masked.
    cancelled() true while starting raises StackStopped (after everything started so far is stopped)."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="penny-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **settings}
    env.pop("WORKER_NAME", None)
    env.setdefault("AUDIT_LOG_PATH", str(log_dir / "audit.jsonl"))
    stack = Stack(env, log_dir, cancelled=cancelled)
    try:
        found = redis_endpoint({**env, "REDIS_URL": redis_url}) if redis_url else None
        try:
            answers = found is not None and found.verify(timeout_s=1)
        except ConfigError as exc:  # Redis is there but refuses REDIS_URL's credentials or TLS: stop here
            raise RuntimeError(str(exc)) from None
        if answers:
            env["REDIS_URL"] = str(redis_url)
        elif found is not None and (found.tls or "@" in found.url):
            raise RuntimeError(f"REDIS_URL {found.redacted} does not answer (the stack starts a Redis of its own "
                               "only for a plain redis://host:port URL)")
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
        yield stack, f"http://{url_host(env.get('SANDBOX_HOST', '127.0.0.1'))}:{env['SANDBOX_PORT']}"
    finally:
        stack.close()


class StopRequest:
    """Set by SIGINT/SIGTERM/SIGHUP: the first one asks for an orderly stop, later ones are ignored so that
    nothing cuts the clean-up short. A plain flag (no lock): a signal handler may run at any bytecode."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self) -> bool:
        return self.signal is not None

    def handle(self, signum: int, _frame: object) -> None:
        if self.signal is None:
            self.signal = signum
            # os.write, not print: a handler that prints while the main code prints breaks the buffered writer.
            with contextlib.suppress(OSError):
                os.write(sys.stdout.fileno(), b"penny: stopping (Ctrl-C again does not interrupt the clean-up)\n")

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.handle)


def main() -> None:
    """`make run`: the whole service in the foreground until Ctrl-C (or SIGTERM), then an orderly stop."""
    stop = StopRequest()
    stop.install()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    port = int(os.environ.get("SANDBOX_PORT", "3003"))
    flower_port = int(os.environ.get("FLOWER_PORT", "5555"))
    log_dir = Path(os.environ.get("PENNY_LOG_DIR", str(REPO / ".cache" / "logs")))
    print(f"penny: starting (logs in {log_dir})", flush=True)
    try:
        # Refuse before anything starts: an open API or Flower beyond this machine needs PENNY_ALLOW_OPEN=true.
        settings = Settings.from_env()
        settings.check_api_binding()
        settings.check_flower_binding()
    except ConfigError as exc:
        print(f"penny: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    exit_code = 0
    try:
        # WORKER_NAME names the worker host (with -1, -2... when there are several); default: the hostname.
        with local_stack(workers=args.workers, api_port=port, flower_port=flower_port, redis_url=redis_url,
                         log_dir=log_dir, worker_prefix=os.environ.get("WORKER_NAME") or None,
                         cancelled=stop) as (stack, url):
            access = ("OPEN: no PENNY_API_KEYS, anyone who reaches it runs code as tenant 'default'"
                      if settings.api_open else "API keys required")
            print(f"penny: API on {url}, bound to {settings.sandbox_host}:{port} ({reach(settings.sandbox_host)});"
                  f" {access}", flush=True)
            built = (REPO / "web" / "dist" / "index.html").is_file()
            print(f"penny: playground on {url}/" + ("" if built else " (not built: `make web` builds it)"), flush=True)
            print(f"penny: try: curl -s {url}/api/v1/execute -H 'content-type: application/json'"
                  f" -d '{{\"code\": \"print(6*7)\"}}'", flush=True)
            flower_access = "basic auth (FLOWER_BASIC_AUTH)" if settings.flower_basic_auth else "no authentication"
            print(f"penny: Flower on http://{url_host(settings.flower_host)}:{flower_port}, bound to "
                  f"{settings.flower_host}:{flower_port} ({reach(settings.flower_host)}); {flower_access}."
                  " Ctrl-C stops everything", flush=True)
            while not stop() and all(proc.poll() is None for _, proc in stack.procs):
                time.sleep(0.2)
            for name, proc in stack.procs:
                if proc.poll() is not None:
                    exit_code = 1
                    print(f"penny: {name} exited with {proc.returncode}; see {log_dir / (name + '.log')}",
                          flush=True)
            if not stop():
                stop.handle(signal.SIGTERM, None)  # from here on a Ctrl-C must not cut the clean-up short
    except StackStopped:
        pass
    except (RuntimeError, TimeoutError) as exc:
        print(f"penny: {exc}; see the logs in {log_dir}", file=sys.stderr, flush=True)
        exit_code = 1
    print("penny: stopped (dockerd keeps running)", flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
