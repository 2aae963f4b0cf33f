"""`make run` as a user runs it, stopped with Ctrl-C: nothing of the stack is left, dockerd keeps running.

A terminal's Ctrl-C is SIGINT to its foreground process group: `make` and `deploy/stack.py`. The stack's own
processes run in sessions of their own and are stopped in order by stack.py; a dockerd that the set-up starts
runs in a session of its own so that the Ctrl-C never reaches it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import psutil
import pytest
import requests
import stack

from tests.integration.conftest import REPO

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

START_TIMEOUT_S = 300.0  # `make run` may install the venv's packages and rebuild the image first
STOP_TIMEOUT_S = 150.0  # stack.py gives a worker 90 s to finish its jobs, then removes what is left


def poll(predicate: Callable[[], bool], timeout_s: float, what: str, output: Path | None = None) -> None:
    """Wait until predicate() is true, at most timeout_s seconds; the failure shows the end of output."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout_s:.0f} s" + (f"\n{output.read_text()[-3000:]}" if output else ""))
        time.sleep(0.2)


def processes_of_run(marker: str, redis_port: str) -> list[psutil.Process]:
    """Every live process of one `make run`: those whose environment carries PENNY_TEST_RUN=marker (`make`
    and all it started), and its redis-server (which writes its title over its environment)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "environ", "status"]):
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        environ = proc.info["environ"] or {}
        redis = proc.info["name"] == "redis-server" and f":{redis_port}" in " ".join(proc.info["cmdline"] or [])
        if environ.get("PENNY_TEST_RUN") == marker or redis:
            found.append(proc)
    return found


def alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's zombie waits for whoever adopted it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def describe(procs: list[psutil.Process]) -> list[str]:
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
    return described


def sandboxes_of(client: docker.DockerClient, worker: str) -> list[str]:
    filters = {"label": ["penny.sandbox=1", f"penny.worker={worker}"]}
    return [container.id for container in client.containers.list(all=True, sparse=True, filters=filters)]


def dockerd_pids() -> set[int]:
    return {proc.pid for proc in psutil.process_iter(["name"]) if proc.info["name"] == "dockerd"}


@contextlib.contextmanager
def make_run(tmp_path: Path, marker: str, worker: str) -> Iterator[tuple[subprocess.Popen, Path, dict[str, str]]]:
    """`make run` in a process group of its own (as a shell starts a foreground job), on free ports; whatever
    of it is left at the end (the test failed) is killed and its sandboxes removed."""
    redis_port = str(stack.free_port())
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update({
        "PENNY_TEST_RUN": marker,
        "SANDBOX_PORT": str(stack.free_port()),
        "FLOWER_PORT": str(stack.free_port()),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "WORKER_NAME": worker,
        "WORKERS": "1",
        "POOL_SIZE": "2",
        "SESSION_POOL_SIZE": "1",
        "PENNY_LOG_DIR": str(tmp_path / "logs"),
        "PYTHONUNBUFFERED": "1",
    })
    output = tmp_path / "make-run.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(["make", "run"], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, output, env
    finally:
        for leftover in processes_of_run(marker, redis_port):
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        client = docker.from_env(timeout=60)
        for container in client.containers.list(all=True, sparse=True, filters={"label": f"penny.worker={worker}"}):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.mark.timeout(START_TIMEOUT_S + STOP_TIMEOUT_S + 120)
def test_ctrl_c_on_make_run_removes_every_sandbox_and_process_and_leaves_dockerd(
        services_ready: None, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    worker = f"makerun-{marker[:8]}"
    client = docker.from_env(timeout=60)
    engines = dockerd_pids()
    with make_run(tmp_path, marker, worker) as (make, output, env):
        api = f"http://127.0.0.1:{env['SANDBOX_PORT']}"
        redis_port = env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]

        def api_up() -> bool:
            assert make.poll() is None, f"make run exited with {make.returncode}:\n{output.read_text()}"
            return "penny: API on" in output.read_text()

        poll(api_up, START_TIMEOUT_S, "make run", output)
        assert requests.get(f"{api}/health", timeout=30).status_code == 200
        result = requests.post(f"{api}/api/v1/execute", json={"code": "print(6*7)"}, timeout=120).json()
        assert result["status"] == "success" and result["stdout"] == "42\n", result
        assert result["worker"] == worker
        assert sandboxes_of(client, worker), "the stack runs no sandbox, the test would prove nothing"
        running = processes_of_run(marker, redis_port)
        commands = " | ".join(describe(running))
        for part in ("redis-server", "api.serve", "workers.serve", "flower", "deploy/stack.py"):
            assert part in commands, f"no {part} among the run's processes: {commands}"

        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
        poll(lambda: "penny: stopping" in output.read_text(), 30, "stack.py saw the Ctrl-C", output)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGINT)  # an impatient second Ctrl-C: must not cut the clean-up short
        # The second Ctrl-C may end `make` itself (it waits for its child once, then dies by the signal):
        # what counts is that stack.py and everything it started finish their stop.
        poll(lambda: not processes_of_run(marker, redis_port), STOP_TIMEOUT_S, "the stack stopped", output)
        make.wait(10)

        text = output.read_text()
        assert "penny: stopped" in text, text
        assert not [proc for proc in running if alive(proc)], "a process of the stack is still running"
        assert sandboxes_of(client, worker) == [], "sandbox containers left behind"
        assert engines and dockerd_pids() >= engines, "dockerd was stopped"
        assert client.ping()


def test_a_dockerd_the_set_up_starts_runs_out_of_reach_of_ctrl_c(tmp_path: Path) -> None:
    """ensure_system.sh with stand-in docker/dockerd/pgrep: the dockerd it starts is in a session of its own
    and survives SIGINT to the process group that ran the set-up (as a Ctrl-C on `make run` sends it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    up, info = tmp_path / "dockerd.up", tmp_path / "dockerd.info"
    # Like the real engine (Go's signal.Notify), the stand-in dies of SIGINT even when started with it ignored.
    (bin_dir / "dockerd").write_text(f"""#!{sys.executable}
import os, pathlib, signal, time
signal.signal(signal.SIGINT, signal.SIG_DFL)
pathlib.Path({str(info)!r}).write_text(f"{{os.getpid()}} {{os.getsid(0)}}")
pathlib.Path({str(up)!r}).touch()
time.sleep(120)
""")
    (bin_dir / "docker").write_text(f"#!/bin/bash\n[ \"$1\" = info ] && [ -e {up} ]\n")
    (bin_dir / "pgrep").write_text("#!/bin/bash\nexit 1\n")  # no dockerd runs (the real one is not ours)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PENNY_DOCKERD_LOG": str(tmp_path / "log")}
    # The set-up, then a foreground job that lives on, in one process group: the terminal's job.
    job = subprocess.Popen(["bash", "-c", "bash deploy/scripts/ensure_system.sh && exec sleep 60"], cwd=REPO,
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True)
    pid = None
    try:
        poll(lambda: info.exists() and info.read_text() != "", 30, "the stand-in dockerd started")
        pid, session = (int(field) for field in info.read_text().split())
        assert job.poll() is None, job.stdout.read().decode() if job.stdout else ""
        assert session == pid and os.getpgid(pid) == pid and session != os.getsid(job.pid)

        os.killpg(job.pid, signal.SIGINT)  # Ctrl-C
        assert job.wait(10) == -signal.SIGINT
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE, "the dockerd stand-in got the Ctrl-C"
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
