"""Each limit, attacked: after every one of them the next job is served normally."""

from __future__ import annotations

import time

import pytest

from core.isolation import Tier
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow, pytest.mark.tiers]


@pytest.fixture
def cluster(open_cluster: Cluster) -> Cluster:
    """These attacks use os and signal: they run with the policy layer off, against the container."""
    return open_cluster


def assert_next_job_works(cluster: Cluster) -> None:
    result = cluster.execute("print('still here')")
    assert result["status"] == "success" and result["stdout"] == "still here\n"


def test_an_infinite_loop_is_killed_at_its_timeout(cluster: Cluster) -> None:
    started = time.monotonic()
    result = cluster.execute("print('spinning')\nwhile True:\n    pass", timeout=1500)
    elapsed = time.monotonic() - started
    assert result["status"] == "timeout"
    assert result["stdout"] == "spinning\n"
    assert elapsed < 1.5 + 1.0
    assert_next_job_works(cluster)


def test_a_sleeping_program_is_also_killed_at_its_timeout(cluster: Cluster) -> None:
    result = cluster.execute("import time\ntime.sleep(60)", timeout=1000)
    assert result["status"] == "timeout" and result["metrics"]["durationMs"] < 2000
    assert_next_job_works(cluster)


def test_a_2_gib_allocation_is_memory_exceeded(cluster: Cluster) -> None:
    result = cluster.execute("block = bytearray(2 * 1024**3)\nblock[::4096] = b'x' * len(block[::4096])\n'done'")
    assert result["status"] == "memory_exceeded"
    assert result["result"] is None
    assert_next_job_works(cluster)


def test_a_fork_bomb_stays_inside_the_pids_limit(cluster: Cluster, tier: Tier) -> None:
    code = ("import os\n"
            "children = 0\n"
            "for _ in range(10000):\n"
            "    try:\n"
            "        if os.fork() == 0:\n"
            "            import time; time.sleep(30); os._exit(0)\n"
            "        children += 1\n"
            "    except OSError:\n"
            "        break\n"
            "children")
    result = cluster.execute(code, timeout=10000)
    if tier is Tier.GVISOR:
        # Its processes are the Sentry's, and gVisor enforces no RLIMIT_NPROC: the bomb ends the whole sandbox
        # at its memory or host-task limit (workers.hardening, per-tier options), and the worker replaces it.
        assert result["status"] in ("memory_exceeded", "error") and result["result"] is None, result
    else:
        assert result["status"] == "success", result["error"]
        assert int(result["result"]["repr"]) < 100  # the pids limit (64) stopped it
    after = cluster.execute("import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    # The runtime, its light parent, the kernel (and at most its pre-fork sibling).
    assert len(eval(after["result"]["repr"])) <= 4
    assert_next_job_works(cluster)


def test_a_100_mb_print_is_cut_at_the_output_limit_keeping_the_head(cluster: Cluster) -> None:
    result = cluster.execute("print('0123456789' * 10_000_000)\nprint('never')")
    assert result["status"] == "output_limit" and result["truncated"] is True
    assert len(result["stdout"].encode()) == 1024 * 1024
    assert result["stdout"].startswith("0123456789012")
    assert "never" not in result["stdout"]
    assert_next_job_works(cluster)


def test_filling_the_workspace_gives_the_user_an_error(cluster: Cluster) -> None:
    code = ("chunk = b'x' * (1024 * 1024)\n"
            "written = 0\n"
            "try:\n"
            "    for index in range(1000):\n"
            "        with open(f'/workspace/f{index}', 'wb') as handle:\n"
            "            for _ in range(8):\n"
            "                handle.write(chunk); written += 1\n"
            "except OSError as exc:\n"
            "    print(type(exc).__name__, exc.errno)\n"
            "written")
    result = cluster.execute(code, timeout=15000)
    assert result["status"] == "success", result["error"]
    assert result["stdout"].split()[0] == "OSError" and int(result["stdout"].split()[1]) in (27, 28)  # EFBIG/ENOSPC
    assert int(result["result"]["repr"]) <= 110  # the 100 MiB workspace, in MiB
    assert_next_job_works(cluster)


def test_a_file_over_the_size_limit_is_refused(cluster: Cluster) -> None:
    result = cluster.execute("open('/workspace/big', 'wb').write(b'x' * (11 * 1024 * 1024))")
    assert result["status"] == "error" and result["error"]["type"] == "OSError"
    assert "File too large" in result["error"]["message"]
