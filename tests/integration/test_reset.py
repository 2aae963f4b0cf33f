"""The reset between stateless jobs leaves nothing for the next job: no IPC object, no file, no broken tree."""

from __future__ import annotations

import ast
import errno
import time
from typing import Any

import docker
import pytest
import requests

from tests.integration.conftest import TEST_SETTINGS, Cluster
from workers.hardening import LABEL_MODE, LABEL_SANDBOX, LABEL_WORKER

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow, pytest.mark.tiers]

POOL_SIZE = int(TEST_SETTINGS["POOL_SIZE"])
# The id of the container a job runs in: Docker bind-mounts /etc/hostname from the container's own directory.
SANDBOX_ID = (
    "import re\n"
    "sandbox = re.search(r'/containers/([0-9a-f]{64})/hostname ', open('/proc/self/mountinfo').read()).group(1)\n"
)
# What a job can see of the IPC namespace and the POSIX IPC file systems.
SEEN_IPC = (
    "import os\n"
    "seen = {kind: open(f'/proc/sysvipc/{kind}').read().splitlines()[1:] for kind in ('shm', 'msg', 'sem')}\n"
    "seen['mqueue'] = sorted(os.listdir('/dev/mqueue'))\n"
    "seen['dev_shm'] = sorted(os.listdir('/dev/shm'))\n"
)
NOTHING_SEEN = {"shm": [], "msg": [], "sem": [], "mqueue": [], "dev_shm": []}
LEFTOVER_SHM_BYTES = 256 * 1024 * 1024
# User code can no longer create SysV IPC objects or POSIX message queues (the seccomp filter refuses them).
# This script, run with `docker exec` as the sandbox user in an idle pooled sandbox, stands in for anything in
# the sandbox that still could: it leaves what job N would have left, for job N to see and the reset after
# it to remove. The segment's pages are touched, so they are charged to the container's memory.
PLANT_IPC = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000
def check(value, what):
    if value == -1:
        raise OSError(ctypes.get_errno(), what)
    return value
libc.shmat.restype = ctypes.c_void_p
shm = check(libc.shmget(0x5E11, ctypes.c_size_t({LEFTOVER_SHM_BYTES}), IPC_CREAT | 0o666), "shmget")
address = libc.shmat(shm, None, 0)
if address in (None, ctypes.c_void_p(-1).value):
    raise OSError(ctypes.get_errno(), "shmat")
ctypes.memset(address, 0x41, {LEFTOVER_SHM_BYTES})
check(libc.shmdt(ctypes.c_void_p(address)), "shmdt")
class Message(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 16)]
queue = check(libc.msgget(0x5E12, IPC_CREAT | 0o666), "msgget")
check(libc.msgsnd(queue, ctypes.byref(Message(1, b"secret")), 16, 0), "msgsnd")
check(libc.semget(0x5E13, 3, IPC_CREAT | 0o666), "semget")
mq = check(libc.mq_open(b"/penny-leftover", os.O_CREAT | os.O_RDWR, 0o600, None), "mq_open")
check(libc.mq_send(mq, b"secret", 6, 0), "mq_send")
with open("/dev/shm/penny-leftover", "w") as handle:
    handle.write("secret")
"""
# An ipcs-like read, from outside the job, of what the plant left.
READ_IPC = (
    "import os\n"
    "print({kind: len(open(f'/proc/sysvipc/{kind}').read().splitlines()) - 1 for kind in ('shm', 'msg', 'sem')},"
    " os.listdir('/dev/mqueue'), os.listdir('/dev/shm'))"
)


def _run(cluster: Cluster, code: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = cluster.execute(code)
    return result, time.monotonic() - started


def _value(result: dict[str, Any]) -> Any:
    assert result["status"] == "success", result["error"]
    return ast.literal_eval(result["result"]["repr"])


def _wait_for_a_full_pool(cluster: Cluster, *, timeout_s: float = 120) -> None:
    """Until the worker's health report counts POOL_SIZE idle sandboxes (the pool fills in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        workers = requests.get(f"{cluster.url}/health", timeout=30).json().get("workers", [])
        idle = sum(int(worker.get("pool", {}).get("idle", 0)) for worker in workers)
        if idle >= POOL_SIZE:
            return
        assert time.monotonic() < deadline, f"the pool has {idle} of {POOL_SIZE} idle sandboxes"
        time.sleep(0.2)  # polling an observed condition, with a deadline


def _every_sandbox(cluster: Cluster) -> set[str]:
    """Run trivial jobs one after the other until every sandbox of the pool has run one; their ids.

    The pool hands idle sandboxes out in turn (a sandbox goes back to the end once reset), so jobs run one
    after the other visit every sandbox of a full pool."""
    _wait_for_a_full_pool(cluster)
    seen: set[str] = set()
    for _ in range(POOL_SIZE * 4):
        seen.add(_value(cluster.execute(SANDBOX_ID + "sandbox")))
        if len(seen) == POOL_SIZE:
            return seen
    raise AssertionError(f"only {len(seen)} of {POOL_SIZE} sandboxes ran a job")


def _pool_containers(cluster: Cluster) -> dict[str, Any]:
    client = docker.from_env(timeout=30)
    containers = client.containers.list(sparse=True, filters={"label": [f"{LABEL_SANDBOX}=1",
                                                                         f"{LABEL_MODE}=stateless"]})
    return {c.id: c for c in containers
            if (c.attrs.get("Labels") or {}).get(LABEL_WORKER, "").startswith(cluster.worker_prefix)}


def _print_timings(what: str, runs: list[tuple[dict[str, Any], float]]) -> None:
    for index, (result, wall_s) in enumerate(runs):
        metrics = result.get("metrics", {})
        print(f"{what} {index + 1}: {result['status']}, {wall_s * 1000:.0f} ms over HTTP, "
              f"queued {metrics.get('queuedMs')} ms, ran {metrics.get('durationMs')} ms")


@pytest.mark.not_on_gvisor(reason="a job cannot name its container (no host paths in /proc/self/mountinfo) and "
                                   "there is no /proc/sysvipc to list leftovers with")
def test_ipc_objects_and_dev_shm_files_left_by_a_job_are_gone_for_the_next_12_jobs(open_cluster: Cluster) -> None:
    cluster = open_cluster  # the probes read /proc and /dev: the policy layer is off, the container is the boundary
    sandboxes = _every_sandbox(cluster)
    containers = _pool_containers(cluster)
    assert sandboxes <= containers.keys()
    for sandbox in sandboxes:  # idle now, each of them: what follows stands in for job N's leftovers
        exit_code, output = containers[sandbox].exec_run(["python3", "-c", PLANT_IPC], user="1000")
        assert exit_code == 0, output.decode(errors="replace")
        exit_code, output = containers[sandbox].exec_run(["python3", "-c", READ_IPC], user="1000")
        assert exit_code == 0, output.decode(errors="replace")
        assert output.decode().strip() == ("{'shm': 1, 'msg': 1, 'sem': 1} ['penny-leftover'] ['penny-leftover']")

    # Job N: one on each sandbox (the pool hands them out in turn). It sees the leftovers; its reset must go.
    planted_in: set[str] = set()
    for _ in range(POOL_SIZE):
        sandbox, seen = _value(cluster.execute(SANDBOX_ID + SEEN_IPC + "(sandbox, seen)"))
        planted_in.add(sandbox)
        assert {kind: len(items) for kind, items in seen.items()} == {kind: 1 for kind in NOTHING_SEEN}, seen
    assert planted_in == sandboxes

    # The next 12 jobs, three on each sandbox: nothing of it, and the 256 MiB segment's memory is free again
    # (with it still there, this 256 MiB allocation would end memory_exceeded).
    runs = [_run(cluster, SANDBOX_ID + SEEN_IPC + f"room = b'x' * {LEFTOVER_SHM_BYTES}\ndel room\n(sandbox, seen)")
            for _ in range(12)]
    _print_timings("job after the IPC leftovers", runs)
    probed_in: set[str] = set()
    for result, _ in runs:
        sandbox, seen = _value(result)
        probed_in.add(sandbox)
        assert seen == NOTHING_SEEN
    assert probed_in == sandboxes  # every planted sandbox was reset and reused, none replaced


# pathlib only, as a policy-compliant job would: a 1,200-level tree, /workspace, /tmp and /dev/shm filled with
# empty files up to their file limit (300,000 asked for), and directories made unreadable at several depths.
PLANT_TREES = (
    "from pathlib import Path\n"
    "deep = Path('/tmp/deep')\n"
    "deep.mkdir()\n"
    "for _ in range(1200):\n"
    "    deep = deep / 'd'\n"
    "    deep.mkdir()\n"
    "(deep / 'bottom.txt').write_text('x')\n"
    "locked = [Path('/workspace/locked', *['l'] * depth) for depth in range(1, 6)]\n"
    "locked[-1].mkdir(parents=True)\n"
    "for directory in locked:\n"
    "    (directory / 'secret.txt').write_text('s3cr3t')\n"
    "for directory in reversed(locked):\n"
    "    directory.chmod(0)\n"
    "Path('/tmp/write-only').mkdir(); Path('/tmp/write-only/f').touch(); Path('/tmp/write-only').chmod(0o300)\n"
    "made, errors = {}, {}\n"
    "for root in ('/workspace/many', '/tmp/many', '/dev/shm/many'):\n"
    "    Path(root).mkdir()\n"
    "    made[root] = 0\n"
    "    try:\n"
    "        for index in range(300_000):\n"
    "            Path(root, f'f{index}').touch()\n"
    "            made[root] += 1\n"
    "    except OSError as exc:\n"
    "        errors[root] = exc.errno\n"
    "(sandbox, made, errors)"
)


@pytest.mark.not_on_gvisor(reason="a job cannot name its container (no host paths in /proc/self/mountinfo)")
def test_deep_trees_many_files_and_unreadable_dirs_left_by_a_job_do_not_break_the_next_8_jobs(
        open_cluster: Cluster) -> None:
    cluster = open_cluster
    sandboxes = _every_sandbox(cluster)
    planted = [_run(cluster, SANDBOX_ID + PLANT_TREES) for _ in range(POOL_SIZE)]
    _print_timings("tree-planting job", planted)
    planted_in: set[str] = set()
    for result, _ in planted:
        sandbox, made, errors = _value(result)
        planted_in.add(sandbox)
        # The file limits (MAX_FILES, 65,536 by default; 1,024 on /dev/shm) stopped it long before 300,000:
        # ENOSPC, a plain OSError for the job.
        assert errors == dict.fromkeys(("/workspace/many", "/tmp/many", "/dev/shm/many"), errno.ENOSPC), errors
        assert 1000 < made["/workspace/many"] < 65_536 and 1000 < made["/tmp/many"] < 65_536, made
        assert 100 < made["/dev/shm/many"] < 1024, made
    assert planted_in == sandboxes

    runs = [_run(cluster, SANDBOX_ID + (
        "import os, numpy\n"
        "total = int(numpy.arange(1000).sum())\n"
        "(sandbox, total, sorted(os.listdir('/workspace')), os.listdir('/dev/shm'),\n"
        " [n for n in os.listdir('/tmp') if not n.startswith('.penny-mplconfig')])"))
        for _ in range(8)]
    # On time: the durations are printed for the reader (a shared machine: no timed assertion).
    _print_timings("job after the trees", runs)
    probed_in: set[str] = set()
    for result, _ in runs:
        sandbox, total, workspace, dev_shm, tmp = _value(result)
        probed_in.add(sandbox)
        assert (total, workspace, dev_shm, tmp) == (499500, [], [], [])
    assert probed_in == sandboxes  # every sandbox was reset and reused, none failed its reset
