"""Tenants share workers, not each other's secrets, turn or leftovers: two tenants' keys on a real stack.

Each test asserts that the side effect did not happen: a secret on the broker or in Flower, one tenant's
backlog holding up the other's work, a job left `running` by a restarted worker, a job reading the figures
of the job before it.
"""

from __future__ import annotations

import ast
import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import stack

from tests.integration.conftest import Cluster, _open_policy_dir, running_cluster
from workers.masking import MASKED_PATHS

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

KEY_A, KEY_B = (uuid.uuid4().hex for _ in range(2))
FLOOD_JOBS = 60
FLOOD_SLEEP_S = 8
PRINT_WITHIN_S = 15.0
SESSION_CREATE_WITHIN_S = 5.0


class Client:
    """HTTP calls made with one API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", headers=self.headers, timeout=120, **kwargs)

    def execute(self, code: str, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/api/v1/execute", json={"code": code, **body})
        assert response.status_code == 200, response.text
        return response.json()

    def wait_until_final(self, job_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (view := self.call("GET", f"/api/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"job {job_id} still {view['status']}"
            time.sleep(0.1)
        return view


@pytest.fixture(scope="module")
def sched_cluster(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    """One worker with one pooled sandbox (so consecutive jobs share it) and the policy layer off (the jobs
    read /proc and /sys as an attacker would); tenants acme and beta."""
    with running_cluster("sched", log_root, POOL_SIZE="1", SESSION_POOL_SIZE="2",
                         POLICY_DIR=str(_open_policy_dir(log_root / "sched")),
                         PENNY_API_KEYS=f"{KEY_A}:acme,{KEY_B}:beta") as running:
        yield running


# ---- the broker carries ids only ------------------------------------------------------------------------

_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(text: str) -> str:
    """One argument of a MONITOR line, as the client sent it (Redis escapes quotes, \\n, bytes as \\xNN)."""
    raw = re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)
    return raw.encode("latin-1", "backslashreplace").decode("unicode_escape", "replace")


def _readable_forms(argument: str) -> Iterator[str]:
    """The argument, and the body of a kombu message inside it (base64 JSON) decoded."""
    yield argument
    try:
        envelope = json.loads(argument)
    except ValueError:
        return
    if isinstance(envelope, dict) and isinstance(envelope.get("body"), str):
        yield json.dumps(envelope.get("headers"))
        try:
            yield base64.b64decode(envelope["body"]).decode("utf-8", "replace")
        except ValueError:
            pass


class BrokerTap:
    """Every command the stack's Redis executes while open (MONITOR), split into the broker's (kombu's
    queues, bindings, unacked messages, event channels: every key outside `penny:`) and the rest."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.broker: list[list[str]] = []
        self.store: list[list[str]] = []
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._client.monitor() as monitor:
            self._started.set()
            while not self._stop.is_set():
                # The raw line (`<time> [<db> <client>] "CMD" "arg"...`): redis-py's own parsing drops escapes.
                line = monitor.connection.read_response()
                text = line.decode("latin-1") if isinstance(line, bytes) else str(line)
                args = [_unescape(arg) for arg in _QUOTED.findall(text.split("] ", 1)[-1])]
                if len(args) < 2:
                    continue
                key = args[3] if args[0].upper() in ("EVALSHA", "EVAL") and len(args) > 3 else args[1]
                (self.store if key.startswith("penny:") else self.broker).append(args)

    def __enter__(self) -> BrokerTap:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(1.5)  # the last events (task-succeeded) and heartbeat commands of the workers
        self._stop.set()
        self._thread.join(timeout=10)

    def broker_mentions(self, secret: str) -> list[list[str]]:
        return [args for args in self.broker if any(secret in form for arg in args for form in _readable_forms(arg))]

    def store_mentions(self, secret: str) -> list[list[str]]:
        return [args for args in self.store if any(secret in arg for arg in args)]


def test_secrets_never_travel_on_the_broker_or_reach_flower(sched_cluster: Cluster) -> None:
    a, b = Client(sched_cluster.url, KEY_A), Client(sched_cluster.url, KEY_B)
    flower_port = stack.free_port()
    sched_cluster.stack.start_flower(flower_port)
    variable_secret, code_secret = f"var-{uuid.uuid4().hex}", f"code-{uuid.uuid4().hex}"
    with BrokerTap(sched_cluster.stack.redis_client()) as tap:
        created = b.call("POST", "/api/v1/sessions", json={"variables": {"db_password": variable_secret}})
        assert created.status_code == 201, created.text
        session = created.json()["sessionId"]
        assert a.execute(f"len('{code_secret}')")["result"]["repr"] == str(len(code_secret))
        in_session = b.execute(f"db_password + '/{code_secret}'", sessionId=session)
        assert in_session["result"]["repr"] == repr(f"{variable_secret}/{code_secret}")  # the secrets arrived
        assert b.call("DELETE", f"/api/v1/sessions/{session}").status_code == 204
    queues = {args[1] for args in tap.broker if args[0].upper() in ("LPUSH", "RPUSH")}
    assert "penny" in queues and any(q.startswith("penny.host.") for q in queues), queues
    assert any(args[0].upper() == "PUBLISH" for args in tap.broker)  # the workers' task events
    # The tap would have seen them: both secrets went through Redis, in the job and session records.
    assert tap.store_mentions(variable_secret) and tap.store_mentions(code_secret)
    for secret in (variable_secret, code_secret):
        assert tap.broker_mentions(secret) == [], f"{secret} travelled on the broker"

    # Flower lists the tasks with their arguments (from the workers' events): ids at most, never a secret.
    deadline = time.monotonic() + 30
    while not (tasks := requests.get(f"http://127.0.0.1:{flower_port}/api/tasks", timeout=10).json()):
        assert time.monotonic() < deadline, "Flower never listed a task"
        a.execute("1")
        time.sleep(1)
    listed = json.dumps(tasks)
    assert variable_secret not in listed and code_secret not in listed


# ---- fair scheduling ------------------------------------------------------------------------------------

def test_one_tenants_backlog_does_not_hold_up_anothers_work(sched_cluster: Cluster) -> None:
    a, b = Client(sched_cluster.url, KEY_A), Client(sched_cluster.url, KEY_B)
    flood = []
    session: str | None = None
    try:
        for _ in range(FLOOD_JOBS):
            response = a.call("POST", "/api/v1/jobs", json={"code": f"import time\ntime.sleep({FLOOD_SLEEP_S})"})
            assert response.status_code == 202, response.text
            flood.append(response.json()["jobId"])
        deadline = time.monotonic() + 30
        while a.call("GET", f"/api/v1/jobs/{flood[0]}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # acme's backlog fills the only sandbox for the next 8 minutes; beta's work goes in between.
        started = time.monotonic()
        answer = b.execute("print('beta')")
        printed_s = time.monotonic() - started
        assert answer["status"] == "success" and answer["stdout"] == "beta\n"
        assert printed_s < PRINT_WITHIN_S, f"beta's print took {printed_s:.1f} s behind acme's backlog"
        started = time.monotonic()
        created = b.call("POST", "/api/v1/sessions")
        created_s = time.monotonic() - started
        assert created.status_code == 201, created.text
        session = created.json()["sessionId"]
        assert created_s < SESSION_CREATE_WITHIN_S, f"beta's session create took {created_s:.1f} s"
        assert b.execute("6 * 7", sessionId=session)["result"]["repr"] == "42"
        # acme's backlog is still there: it was not dropped to make room.
        statuses = [a.call("GET", f"/api/v1/jobs/{job_id}").json()["status"] for job_id in flood]
        assert statuses.count("queued") >= FLOOD_JOBS - 5
    finally:
        for job_id in flood:
            a.call("DELETE", f"/api/v1/jobs/{job_id}")
        if session is not None:
            b.call("DELETE", f"/api/v1/sessions/{session}")


# ---- no figures of the previous job ---------------------------------------------------------------------

READ_FIGURES = """
import json
figures = {'container': open('/proc/self/cgroup').read()}
for path in ['/sys/fs/cgroup/memory/memory.max_usage_in_bytes', '/sys/fs/cgroup/memory/memory.failcnt',
             '/sys/fs/cgroup/memory/memory.stat', '/sys/fs/cgroup/cpuacct/cpuacct.usage',
             '/sys/fs/cgroup/cpuacct/cpuacct.stat', '/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage',
             '/sys/fs/cgroup/memory.peak', '/sys/fs/cgroup/cpu.stat', '/sys/fs/cgroup/memory.stat']:
    try:
        figures[path] = open(path).read()[:400]
    except OSError as exc:
        figures[path] = type(exc).__name__
for path in ['/proc/1/stat', '/proc/1/task/1/stat']:
    try:
        fields = open(path).read().rsplit(')', 1)[1].split()
        figures[path] = {'cutime': int(fields[13]), 'cstime': int(fields[14])}
    except (OSError, IndexError, ValueError) as exc:
        figures[path] = type(exc).__name__
import os
masked = {}
for path in MASKED:
    try:
        masked[path] = os.listdir(path) if os.path.isdir(path) else open(path).read()[:200]
    except FileNotFoundError:
        pass  # not on this host (the other cgroup version)
    except OSError as exc:
        masked[path] = type(exc).__name__
figures['masked'] = masked
json.dumps(figures)
"""

# 64 MB: its peak is over 60 MB in a kernel of the light parent too (core.kernel_parent: it imports only
# the standard library), which starts at about 20 MB where the supervisor's kernels start at about 100.
HEAVY_JOB = """
import time
block = 'x' * (64 * 1024 * 1024)
end = time.process_time() + 1.5
while time.process_time() < end:
    pass
open('/proc/self/cgroup').read()
"""


def _numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\b\d+\b", text)]


def test_the_next_job_in_a_sandbox_sees_no_figures_of_the_previous_one(sched_cluster: Cluster) -> None:
    a, b = Client(sched_cluster.url, KEY_A), Client(sched_cluster.url, KEY_B)
    heavy = a.execute(HEAVY_JOB)
    assert heavy["status"] == "success", (heavy["error"], heavy["metrics"], heavy["notes"])
    assert heavy["metrics"]["peakMemoryBytes"] > 60 * 1024 * 1024 and heavy["metrics"]["cpuMs"] >= 1400
    seen = b.execute(READ_FIGURES, variables={"MASKED": list(MASKED_PATHS)})
    assert seen["status"] == "success", seen
    figures: dict[str, Any] = json.loads(ast.literal_eval(seen["result"]["repr"]))
    assert figures.pop("container") == ast.literal_eval(heavy["result"]["repr"])  # the same pooled sandbox
    masked = figures.pop("masked")
    assert "/proc/1/status" in masked and "/proc/1/io" in masked
    shown = {path: value for path, value in masked.items() if value not in ("", [], "PermissionError")}
    assert shown == {}, f"masked figures are readable: {shown}"
    leaks = {}
    for path, value in figures.items():
        if isinstance(value, dict):
            if value["cutime"] + value["cstime"] >= 100:  # clock ticks: a second and a half of acme's CPU
                leaks[path] = value
        elif any(n >= 64 * 1024 * 1024 for n in _numbers(value)) or (
                "cpuacct.usage" in path and any(n >= 1_000_000_000 for n in _numbers(value))):
            leaks[path] = value[:200]
    assert leaks == {}, f"the next job read the previous job's figures: {leaks}"


# ---- worker incarnations --------------------------------------------------------------------------------

def test_a_worker_restarted_under_its_name_ends_what_its_previous_process_ran(services_ready: None,
                                                                              log_root: Path) -> None:
    with running_cluster("restart", log_root, POOL_SIZE="1", SESSION_POOL_SIZE="1",
                         PENNY_API_KEYS=f"{KEY_A}:acme") as cluster:
        a = Client(cluster.url, KEY_A)
        client = cluster.stack.redis_client()
        name = cluster.worker_prefix
        session = a.call("POST", "/api/v1/sessions").json()["sessionId"]
        job = a.call("POST", "/api/v1/jobs", json={"code": "import time\ntime.sleep(15)\n'done'"}).json()["jobId"]
        deadline = time.monotonic() + 30
        while a.call("GET", f"/api/v1/jobs/{job}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        before = json.loads(client.get(f"penny:worker:{name}"))["incarnation"]
        old = next(proc for label, proc in cluster.stack.procs if label == f"worker-{name}")
        cluster.stack.stop(old, sig=9)  # `make run` killed and run again: the same name, a new process
        cluster.stack.start_worker(name, wait_ready=False)
        deadline = time.monotonic() + 120
        while (beat := client.get(f"penny:worker:{name}")) is None or json.loads(beat)["incarnation"] == before:
            assert time.monotonic() < deadline, "the restarted worker never sent a heartbeat"
            time.sleep(0.1)
        # Within a heartbeat TTL of the new incarnation's first heartbeat (3 s here), and long before the
        # job's own 15 s or the overdue reaper's timeout plus a minute.
        view = a.wait_until_final(job, timeout_s=3.0)
        assert view["status"] == "worker_lost", view
        assert a.call("GET", f"/api/v1/sessions/{session}").json()["status"] == "lost"
        # The new incarnation serves: its jobs are not taken for its predecessor's.
        assert a.execute("print('after')")["stdout"] == "after\n"
