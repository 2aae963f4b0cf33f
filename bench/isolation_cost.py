"""What a container runtime costs user code, measured inside the sandbox image (run by bench.py, not a test).

`docker run --runtime <runc|runsc> ... python3 /bench/isolation_cost.py` prints one JSON object: the time to
fork a numpy-loaded Python, let the child exit and reap it (what every stateless job pays: the kernel is
forked per job), a trivial system call (getppid) and an open/write/close of a tmpfs file, as medians.
"""

from __future__ import annotations

import json
import os
import statistics
import time

FORKS = 40
CALLS = 20_000
FILES = 2_000


def fork_exit_wait_ms() -> float:
    """Median ms of fork + _exit + waitpid with numpy imported in the parent."""
    import numpy  # noqa: F401  (its pages are what the fork copies the tables of)

    timings = []
    for _ in range(FORKS):
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def getppid_us() -> float:
    """Median µs of one getppid over 5 rounds."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(CALLS):
            os.getppid()
        rounds.append((time.perf_counter_ns() - started) / CALLS / 1000)
    return statistics.median(rounds)


def open_write_close_us(directory: str = "/tmp") -> float:
    """Mean µs of open + write(4 KiB) + close of a new file on a tmpfs."""
    block = b"x" * 4096
    started = time.perf_counter_ns()
    for index in range(FILES):
        fd = os.open(f"{directory}/f{index}", os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, block)
        os.close(fd)
    elapsed = (time.perf_counter_ns() - started) / FILES / 1000
    for index in range(FILES):
        os.unlink(f"{directory}/f{index}")
    return elapsed


if __name__ == "__main__":
    print(json.dumps({"fork_exit_wait_ms": round(fork_exit_wait_ms(), 2), "getppid_us": round(getppid_us(), 3),
                      "open_write_close_us": round(open_write_close_us(), 1), "release": os.uname().release}))
