"""What a job must not be able to see or do: earlier jobs' leftovers, the network, the host."""

from __future__ import annotations

import ast

import pytest

from core.isolation import Tier
from tests.integration.conftest import Cluster, assert_syscall_reported

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]


@pytest.fixture
def cluster(open_cluster: Cluster) -> Cluster:
    """These attacks use os, signal and socket: they run with the policy layer off, against the container."""
    return open_cluster


def test_a_job_cannot_see_the_previous_jobs_files_variables_or_processes(cluster: Cluster) -> None:
    # Run the planting job on every sandbox of the pool, so the probe lands on one that ran it.
    for _ in range(8):
        planted = cluster.execute(
            "open('/workspace/secret.txt', 'w').write('s3cr3t')\n"
            "open('/tmp/secret.txt', 'w').write('s3cr3t')\n"
            "import glob\n[open(p, 'w').write('poisoned') for p in glob.glob('/tmp/.penny-mplconfig*/*')]\n"
            "open('/dev/shm/secret', 'w').write('s3cr3t')\n"
            "secret_variable = 's3cr3t'\n"
            "import builtins; builtins.planted_builtin = 1\n"
            # No program can start (the kernel's seccomp filter): the leftover process is a forked sleeper.
            "import os, time\n"
            "pid = os.fork()\n"
            "if pid == 0:\n    os.setsid()\n    while True:\n        time.sleep(1)\n"
            "pid"
        )
        assert planted["status"] == "success", planted["error"]
    for _ in range(8):
        probe = cluster.execute(
            "import os, builtins, glob\n"
            "procs = [open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc') if p.isdigit()]\n"
            # /tmp holds a fresh copy of the image's matplotlib font cache after every wipe, nothing else.
            "(os.listdir('/workspace'), [n for n in os.listdir('/tmp') if not n.startswith('.penny-mplconfig')],\n"
            " os.listdir('/dev/shm'),\n"
            " 'secret_variable' in globals(), hasattr(builtins, 'planted_builtin'),\n"
            " [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())\n"
            "  and open(f'/proc/{p}/comm').read() != 'penny-light\\n'],\n"
            " any(open(p).read() == 'poisoned' for p in glob.glob('/tmp/.penny-mplconfig*/*')))"
        )
        assert probe["status"] == "success", probe["error"]
        assert ast.literal_eval(probe["result"]["repr"]) == ([], [], [], False, False, [], False)


def test_there_is_no_network(cluster: Cluster) -> None:
    result = cluster.execute(
        "import socket\n"
        "names = sorted(n for _, n in socket.if_nameindex())\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "    reached = True\n"
        "except OSError as exc:\n"
        "    reached = False\n"
        "(names, reached)"
    )
    assert ast.literal_eval(result["result"]["repr"]) == (["lo"], False)


def test_the_root_filesystem_is_read_only_and_the_user_is_not_root(cluster: Cluster) -> None:
    result = cluster.execute(
        "import os\n"
        "denied = []\n"
        "for path in ['/etc/evil', '/usr/evil', '/opt/penny/evil', '/evil', '/home/evil']:\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "    except OSError:\n"
        "        denied.append(path)\n"
        "caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')][0]\n"
        "(len(denied), os.getuid(), caps, os.path.exists('/var/run/docker.sock'))"
    )
    assert ast.literal_eval(result["result"]["repr"]) == (5, 1000, "0000000000000000", False)


def test_the_runtime_cannot_be_signalled_or_traced_from_user_code(cluster: Cluster, tier: Tier) -> None:
    result = cluster.execute(
        "import os, signal\n"
        "outcomes = []\n"
        "for sig in (signal.SIGKILL, signal.SIGTERM):\n"
        "    try:\n"
        "        os.kill(1, sig); outcomes.append('sent')\n"
        "    except OSError as exc:\n"
        "        outcomes.append(type(exc).__name__)\n"
        "try:\n"
        "    open('/proc/1/mem', 'rb'); outcomes.append('mem readable')\n"
        "except OSError as exc:\n"
        "    outcomes.append(type(exc).__name__)\n"
        "outcomes"
    )
    # The kernel's seccomp filter refuses kill(1, ...) and reports it (test_seccomp.py has the details).
    assert_syscall_reported(result, "kill", tier)
    assert ast.literal_eval(result["result"]["repr"]) == ["PermissionError", "PermissionError", "PermissionError"]
    assert cluster.execute("1 + 1")["result"]["repr"] == "2"  # signals to PID 1 changed nothing
