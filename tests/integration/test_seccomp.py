"""The kernel's seccomp filter on the real stack: each test asserts the forbidden side effect did not happen.

The attacks run on `open_cluster` (the import and filesystem policies are off, so `os`, `subprocess`, `ctypes`
and `signal` are reachable as if the policy layer had been bypassed): what stops them is the kernel filter
(sandbox_runtime/seccomp_filter.py) or the container's profile (deploy/seccomp/penny-sandbox.json).
The libraries run on `cluster` (the default policies) and must not notice the filter.
"""

from __future__ import annotations

import ast
import os
from typing import Any

import pytest

from core.isolation import Tier
from tests.integration.conftest import Cluster, assert_syscall_reported

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]

ATTEMPT = (
    "import errno, os\n"
    "outcomes = {}\n"
    "def attempt(name, fn):\n"
    "    try:\n"
    "        outcomes[name] = fn()\n"
    "    except OSError as exc:\n"
    "        outcomes[name] = errno.errorcode.get(exc.errno, exc.errno)\n"
)
LIBC = (
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def raw(name, *args):\n"
    "    def call():\n"
    "        result = getattr(libc, name)(*args)\n"
    "        if result == -1:\n"
    "            raise OSError(ctypes.get_errno(), name)\n"
    "        return result\n"
    "    return call\n"
)


def value(result: dict[str, Any]) -> Any:
    assert result["result"] is not None, result
    return ast.literal_eval(result["result"]["repr"])


def runtime_targets(result: dict[str, Any]) -> list[str]:
    return [f["target"] for f in result["findings"] if f.get("source") == "runtime"]


def assert_next_jobs_work(cluster: Cluster, count: int = 3) -> None:
    for _ in range(count):
        result = cluster.execute("print('still here')")
        assert result["status"] == "success" and result["stdout"] == "still here\n", result


@pytest.mark.parametrize("start", [
    pytest.param("import subprocess\nsubprocess.run(['/bin/sh', '-c', 'touch /workspace/started'])",
                 id="subprocess"),
    pytest.param("import _posixsubprocess, os\n"
                 "r, w = os.pipe()\n"
                 "_posixsubprocess.fork_exec([b'/bin/sh', b'-c', b'touch /workspace/started'], [b'/bin/sh'], False,"
                 " (), None, None, -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)\n"
                 "os.close(w)\nos.read(r, 100)", id="fork-exec"),
    pytest.param("import os\nos.execv('/bin/sh', ['sh', '-c', 'touch /workspace/started'])", id="execv-in-kernel"),
    pytest.param("import os\nif os.fork() == 0:\n    try:\n"
                 "        os.execv('/usr/bin/python3', ['python3', '-c', 'open(\"/workspace/started\", \"w\")'])\n"
                 "    finally:\n        os._exit(0)\nos.wait()", id="execv-in-a-child"),
    pytest.param("cw = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'catch_warnings'][0]\n"
                 "cw()._module.sys.modules['os'].system('touch /workspace/started')", id="subclasses-walk"),
])
def test_no_program_can_start(open_cluster: Cluster, start: str, tier: Tier) -> None:
    result = open_cluster.execute(f"try:\n    exec({start!r})\nexcept Exception as exc:\n    print(repr(exc))\n"
                                  "import os\nos.path.exists('/workspace/started')")
    assert value(result) is False  # the program never ran
    assert_syscall_reported(result, "execve", tier)
    if tier is Tier.RUNC:
        finding = next(f for f in result["findings"] if f.get("target") == "execve")
        assert finding["message"] == "the system call execve is refused in the sandbox", finding
    assert_next_jobs_work(open_cluster, 1)


def test_sysv_ipc_and_posix_message_queues_cannot_be_created(open_cluster: Cluster, tier: Tier) -> None:
    result = open_cluster.execute(
        ATTEMPT + LIBC +
        "IPC_CREAT = 0o1000\n"
        "attempt('shmget', raw('shmget', 0, 1 << 20, IPC_CREAT | 0o600))\n"
        "attempt('msgget', raw('msgget', 0, IPC_CREAT | 0o600))\n"
        "attempt('semget', raw('semget', 0, 1, IPC_CREAT | 0o600))\n"
        "librt = ctypes.CDLL('librt.so.1', use_errno=True)\n"
        "def mq():\n"
        "    fd = librt.mq_open(b'/penny-mq', os.O_CREAT | os.O_RDWR, 0o600, None)\n"
        "    if fd == -1:\n        raise OSError(ctypes.get_errno(), 'mq_open')\n"
        "    return fd\n"
        "attempt('mq_open', mq)\n"
        "left = ([len(open(f'/proc/sysvipc/{kind}').read().splitlines()) - 1 for kind in ('shm', 'msg', 'sem')]\n"
        "        if os.path.exists('/proc/sysvipc') else None)\n"
        "(outcomes, left, os.listdir('/dev/mqueue') if os.path.exists('/dev/mqueue') else None)")
    outcomes, left, queues = value(result)
    assert outcomes == {"shmget": "EPERM", "msgget": "EPERM", "semget": "EPERM", "mq_open": "EPERM"}
    # gVisor has no /proc/sysvipc and no /dev/mqueue: there the refusals above show that nothing was made.
    assert (left, queues) == (([0, 0, 0], []) if tier is Tier.RUNC else (None, None))
    assert result["status"] == "success" and runtime_targets(result) == []  # refused quietly: libraries probe


def test_signals_and_pidfds_cannot_reach_the_runtime(open_cluster: Cluster, tier: Tier) -> None:
    result = open_cluster.execute(
        ATTEMPT +
        "import signal\n"
        "attempt('kill-1', lambda: os.kill(1, signal.SIGKILL))\n"
        "attempt('kill-all', lambda: os.kill(-1, signal.SIGKILL))\n"
        "attempt('killpg-1', lambda: os.killpg(1, signal.SIGKILL))\n"
        "attempt('pidfd_open', lambda: os.pidfd_open(1))\n"
        "proc1 = os.open('/proc/1', os.O_RDONLY | os.O_DIRECTORY)\n"
        "attempt('pidfd_send_signal', lambda: signal.pidfd_send_signal(proc1, signal.SIGINT))\n"
        "attempt('own-group', lambda: os.kill(0, 0))\n"
        "(outcomes, os.getpgid(0) == os.getpid())")
    outcomes, own_group = value(result)
    assert outcomes == {"kill-1": "EPERM", "kill-all": "EPERM", "killpg-1": "EPERM", "pidfd_open": "EPERM",
                        "pidfd_send_signal": "EPERM", "own-group": None}
    assert own_group  # kill(0, sig) reaches the kernel's own process group only
    assert_syscall_reported(result, "kill", tier)
    assert tier is Tier.GVISOR or runtime_targets(result)[0] == "kill", result["findings"]
    assert_next_jobs_work(open_cluster, 6)  # every sandbox of the pool keeps serving


def test_a_job_cannot_set_the_limits_or_priority_the_next_jobs_inherit(open_cluster: Cluster) -> None:
    """The runtime (PID 1) and its light parent fork every later kernel of their sandbox, of any tenant: their
    limits and priorities are inherited, so a job must not change them (it may change its own)."""
    result = open_cluster.execute(
        ATTEMPT +
        "import resource\n"
        "light = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())\n"
        "         and open(f'/proc/{p}/comm').read() == 'penny-light\\n']\n"
        "for pid in [1, *light]:\n"
        "    attempt(f'prlimit-{pid}', lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (16, 16)))\n"
        "    attempt(f'nice-{pid}', lambda: os.setpriority(os.PRIO_PROCESS, pid, 19))\n"
        "    attempt(f'affinity-{pid}', lambda: os.sched_setaffinity(pid, {0}))\n"
        "    attempt(f'idle-{pid}', lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)))\n"
        "attempt('nice-user', lambda: os.setpriority(os.PRIO_USER, 0, 19))\n"
        "attempt('own', lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))\n"
        "attempt('own-nice', lambda: os.setpriority(os.PRIO_PROCESS, 0, 1))\n"
        "(outcomes, len(light))")
    outcomes, light_parents = value(result)
    assert light_parents <= 1
    refused = {name: "EPERM" for name in outcomes if name not in ("own", "own-nice")}
    assert outcomes == {**refused, "own": None, "own-nice": None}, outcomes
    for _ in range(6):  # every sandbox of the pool: the limits and priority its kernels start with
        after = open_cluster.execute("import os, resource\n(resource.getrlimit(resource.RLIMIT_NOFILE), "
                                     "os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0), "
                                     "len(os.sched_getaffinity(0)) == os.cpu_count())")
        assert value(after) == ((1024, 1024), 0, os.SCHED_OTHER, True), after


def test_other_processes_cannot_be_traced_or_read(open_cluster: Cluster) -> None:
    result = open_cluster.execute(
        ATTEMPT + LIBC +
        "PTRACE_ATTACH, PTRACE_TRACEME = 16, 0\n"
        "attempt('ptrace-attach', raw('ptrace', PTRACE_ATTACH, 1, None, None))\n"
        "attempt('ptrace-traceme', raw('ptrace', PTRACE_TRACEME, 0, None, None))\n"
        "buf = ctypes.create_string_buffer(64)\n"
        "class iovec(ctypes.Structure):\n"
        "    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]\n"
        "local = iovec(ctypes.cast(buf, ctypes.c_void_p), 64)\n"
        "remote = iovec(0x400000, 64)\n"
        "attempt('process_vm_readv', raw('process_vm_readv', 1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))\n"
        "(outcomes, buf.raw == bytes(64))")
    outcomes, untouched = value(result)
    assert outcomes == {"ptrace-attach": "EPERM", "ptrace-traceme": "EPERM", "process_vm_readv": "EPERM"}
    assert untouched
    assert_next_jobs_work(open_cluster, 1)


def test_the_result_channel_cannot_be_closed_or_replaced(open_cluster: Cluster, tier: Tier) -> None:
    result = open_cluster.execute(
        ATTEMPT +
        "r, w = os.pipe()\n"
        "attempt('close', lambda: os.close(4))\n"
        "attempt('dup2', lambda: os.dup2(w, 4))\n"
        "attempt('close-request', lambda: os.close(3))\n"
        "os.closerange(3, 5)\n"  # falls back to close() per fd: both refused
        "outcomes")
    # The reply arrived, over the original channel: nothing user code wrote to its pipe replaced it.
    assert value(result) == {"close": "EPERM", "dup2": "EPERM", "close-request": "EPERM"}
    assert_syscall_reported(result, "dup2", tier)
    assert_next_jobs_work(open_cluster, 1)


def test_the_default_policy_runs_the_scientific_stack_with_no_finding(cluster: Cluster) -> None:
    result = cluster.execute(
        "import io\n"
        "import numpy as np\nimport pandas as pd\nimport scipy.optimize\nimport matplotlib.pyplot as plt\n"
        "import plotly.graph_objects as go\n"
        "x = np.linspace(0, 1, 50)\ny = 3 * x + 1 + np.random.default_rng(0).normal(0, 0.01, 50)\n"
        "frame = pd.DataFrame({'x': x, 'y': y})\n"
        "frame.to_csv('/workspace/data.csv', index=False)\n"
        "back = pd.read_csv('/workspace/data.csv')\n"
        "(slope, intercept), _ = scipy.optimize.curve_fit(lambda t, a, b: a * t + b, back.x, back.y)\n"
        "fig, ax = plt.subplots()\nax.plot(back.x, back.y)\n"
        "buffer = io.BytesIO()\nfig.savefig(buffer, format='png')\nfig.savefig('/workspace/fit.png')\n"
        "plt.show()\n"
        "go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).show()\n"
        "(round(slope), round(intercept), buffer.getvalue()[:4] == b'\\x89PNG', len(back))")
    assert result["status"] == "success", result
    assert result["findings"] == []
    assert value(result) == (3, 1, True, 50)
    assert {plot["format"] for plot in result["plots"]} == {"png", "plotly"}  # savefig, show(): plots came back
