"""What the kernel's seccomp filter costs, measured inside the sandbox image (run by bench.py, not a test).

`docker run ... python3 /bench/seccomp_cost.py` prints one JSON object: per forked kernel, the time to load
the filter the supervisor built once (ms, p50/p95 over RUNS kernels), and per system call the time of an
always-allowed call (getppid) and of one the filter inspects the arguments of (close of a closed fd),
before and after the filter is loaded in the same process (ns).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

sys.path.insert(0, "/opt/penny")

from sandbox_runtime import seccomp_filter  # noqa: E402

RUNS = 30
CALLS = 200_000


def per_call_ns(call: object, *args: int) -> float:
    """Median over 5 rounds of CALLS calls, in ns per call."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter_ns()
        for _ in range(CALLS):
            try:
                call(*args)  # type: ignore[operator]
            except OSError:
                pass
        rounds.append((time.perf_counter_ns() - started) / CALLS)
    return statistics.median(rounds)


def child(write_fd: int) -> None:
    """In a forked kernel-like process: syscall costs, load the filter, syscall costs again."""
    before = {"getppid_ns": per_call_ns(os.getppid), "close_ns": per_call_ns(os.close, 999)}
    started = time.perf_counter()
    built = seccomp_filter._built()
    built.load()
    load_ms = (time.perf_counter() - started) * 1000
    after = {"getppid_ns": per_call_ns(os.getppid), "close_ns": per_call_ns(os.close, 999)}
    os.write(write_fd, json.dumps({"load_ms": load_ms, "before": before, "after": after}).encode())


def main() -> None:
    started = time.perf_counter()
    seccomp_filter._built()  # the supervisor builds it once
    build_ms = (time.perf_counter() - started) * 1000
    samples = []
    for index in range(RUNS):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                if index == 0:
                    child(write_fd)
                else:  # the load time alone: the syscall loops take seconds
                    begun = time.perf_counter()
                    seccomp_filter._built().load()
                    os.write(write_fd, json.dumps({"load_ms": (time.perf_counter() - begun) * 1000}).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        data = b""
        while chunk := os.read(read_fd, 65536):
            data += chunk
        os.close(read_fd)
        os.waitpid(pid, 0)
        samples.append(json.loads(data))
    loads = sorted(sample["load_ms"] for sample in samples)
    print(json.dumps({"build_once_ms": build_ms, "load_p50_ms": loads[len(loads) // 2],
                      "load_p95_ms": loads[int(len(loads) * 0.95)], "syscalls": samples[0]}))


if __name__ == "__main__":
    main()
