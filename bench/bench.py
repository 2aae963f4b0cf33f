"""`make bench`: what one execution costs on a local stack, tier by tier (not a test).

Starts its own Redis, --workers worker hosts, the API and Flower (as `make run` does) and runs each
scenario twice, so the machine's noise shows: stateless print(1) through wrk at 1, 4 and 16 connections; a
numpy one-liner at 1 and 16; session create from the warm pool; a burst of 20 creates at once; in-session
print(1); the time from a print to its SSE stdout event at the client; 16 connections after an idle
minute; --capacity idle sessions on one host, all answering. Next to latency and throughput, every scenario
reports the CPU ms per execution of each tier (bench/tiers.py) and the load generator's own. Writes
.cache/bench/<UTC time>.json and a PNG beside it, and prints a comparison with the previous JSON.

Then the gVisor isolation tier (--runtimes, default runc,runsc): a second stack with SANDBOX_RUNTIME=runsc
runs GVISOR_SCENARIOS (stateless print(1) and the numpy one-liner at 1 connection, session create, in-session
print(1), --gvisor-capacity idle sessions), and a table puts both runtimes side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import report as reporting
from scenarios import NUMPY, PRINT, Bench
from tiers import TierSampler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
import stack  # noqa: E402

OUT_DIR = Path(".cache") / "bench"
# What runs on the gVisor stack: the stateless, numpy and session scenarios (the whole plan would take
# the bench's time twice over on a slower runtime).
GVISOR_SCENARIOS = ("print_c1", "print_c4", "numpy_c1", "session_create", "in_session")
SIDE_BY_SIDE = ("print_c1", "print_c4", "numpy_c1", "session_create", "in_session", "idle_sessions")


def tier_of(process_name: str) -> str:
    """The stack's process names ("api", "worker-bench-1", "flower", "redis") -> tier."""
    return "worker" if process_name.startswith("worker-") else process_name


def seccomp_cost(image: str) -> dict[str, object]:
    """The kernel seccomp filter's cost, measured in the sandbox image under the sandboxes' own profile."""
    import docker

    repo = Path(__file__).resolve().parent.parent
    profile = (repo / "deploy" / "seccomp" / "penny-sandbox.json").read_text()
    output = docker.from_env(timeout=120).containers.run(
        image, ["python3", "/bench/seccomp_cost.py"], remove=True, read_only=True, network_mode="none",
        cap_drop=["ALL"], security_opt=["no-new-privileges:true", f"seccomp={profile}"], user="1000:1000",
        environment={"PENNY_SECCOMP": "required"},
        volumes={str(repo / "bench"): {"bind": "/bench", "mode": "ro"}})
    return dict(json.loads(output))


def isolation_cost(image: str, runtime: str) -> dict[str, object]:
    """Raw costs of a runtime for user code (bench/isolation_cost.py): fork of a numpy-loaded Python, a trivial
    system call, a file's open/write/close, measured in a container of that runtime."""
    import docker

    repo = Path(__file__).resolve().parent.parent
    output = docker.from_env(timeout=300).containers.run(
        image, ["python3", "/bench/isolation_cost.py"], remove=True, runtime=runtime, read_only=True,
        network_mode="none", cap_drop=["ALL"], user="1000:1000", tmpfs={"/tmp": "rw,size=64m"},
        volumes={str(repo / "bench"): {"bind": "/bench", "mode": "ro"}})
    return dict(json.loads(output))


def package_install(bench: Bench, package: str) -> dict[str, Any]:
    """Seconds to install `package` into a fresh session: the first time (maybe downloading) and again."""
    timings = []
    for _ in range(2):
        session_id = bench.create_session()
        started = time.perf_counter()
        result = bench.post("/packages/install", {"sessionId": session_id, "packages": [package]}, timeout=600)
        timings.append(round(time.perf_counter() - started, 2))
        if result.json().get("failed"):
            raise RuntimeError(f"install {package}: {result.text}")
        bench.delete_session(session_id)
    return {"first_s": timings[0], "cached_s": timings[1]}


def describe(name: str, figures: dict[str, Any]) -> str:
    parts = []
    if "per_min" in figures:
        parts.append(f"{figures['per_min']:,.0f}/min")
    if "p50_ms" in figures:
        parts.append(f"p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms")
    if figures.get("failed"):
        parts.append(f"{figures['failed']} FAILED")
    cpu = figures.get("cpu")
    if cpu:
        tiers = ", ".join(f"{tier} {ms:.2f}" for tier, ms in cpu["tiers_ms"].items() if ms >= 0.005)
        parts.append(f"CPU/exec {cpu['service_ms']:.2f} ms service (kernel {cpu['kernel_ms']:.2f}; {tiers})")
    for key in ("sessions", "answering", "create_all_s", "memory_per_session_mb", "containers", "cgroup_usage_mb_mean",
                "cgroup_rss_mb_mean", "first_s", "cached_s"):
        if key in figures:
            parts.append(f"{key} {figures[key]}")
    return f"{name:<18} " + "; ".join(parts)


def run_stack(args: argparse.Namespace, runtime: str, wanted: set[str], *, capacity: int,
              install: str) -> dict[str, Any]:
    """Start a stack whose sandboxes run on `runtime` (SANDBOX_RUNTIME) and run the wanted scenarios (all when
    empty) twice each; returns {scenario: {run1, run2}}."""
    scenarios: dict[str, Any] = {}
    # One tenant (the API runs open) makes every request: lift its quotas and request-rate limits.
    settings = {"TENANT_MAX_SESSIONS": "100000", "TENANT_MAX_ACTIVE_JOBS": "100000", "RATE_LIMIT_ENABLED": "false",
                "MAX_SESSIONS_PER_HOST": str(max(capacity + 10, 50)),
                "SANDBOX_RUNTIME": runtime}
    with stack.local_stack(workers=args.workers, worker_prefix=f"bench-{runtime}", flower_port=stack.free_port(),
                           **settings) as (running, url):
        sampler = TierSampler()
        for name, proc in running.procs:
            sampler.add(tier_of(name), [proc.pid])
        bench = Bench(url, running.redis_client(), sampler)
        pool_size = int(running.env.get("SESSION_POOL_SIZE", "2")) * args.workers
        plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("print_c1", lambda: bench.wrk(PRINT, '"stdout":"1\\n"', connections=1, seconds=args.seconds)),
            ("print_c4", lambda: bench.wrk(PRINT, '"stdout":"1\\n"', connections=4, seconds=args.seconds)),
            ("print_c16", lambda: bench.wrk(PRINT, '"stdout":"1\\n"', connections=16, seconds=args.seconds)),
            ("numpy_c1", lambda: bench.wrk(NUMPY, '"stdout":"45\\n"', connections=1, seconds=args.seconds)),
            ("numpy_c16", lambda: bench.wrk(NUMPY, '"stdout":"45\\n"', connections=16, seconds=args.seconds)),
            ("session_create", lambda: bench.session_create(max(args.requests // 10, 10))),
            ("session_burst20", lambda: (bench.wait_for_settled_pool(), bench.session_burst(20))[1]),
            ("in_session", lambda: bench.in_session(args.requests)),
            ("sse_first_stdout", lambda: bench.sse_first_stdout(max(args.requests // 3, 10))),
            ("after_idle_c16", lambda: (time.sleep(args.idle),
                                        bench.wrk(PRINT, '"stdout":"1\\n"', connections=16,
                                                  seconds=args.seconds))[1]),
        ]
        bench.wrk(PRINT, '"stdout":"1\\n"', connections=4, seconds=3)  # warm-up: pools and connections
        for name, scenario in plan:
            if wanted and name not in wanted:
                continue
            runs = scenarios.setdefault(name, {})
            for run in ("run1", "run2"):
                runs[run] = scenario()
                print(describe(f"{name} {run[-1]}", runs[run]), flush=True)
        if capacity and (not wanted or "idle_sessions" in wanted):
            figures = bench.idle_sessions(capacity, pool_size=pool_size, tier_label=TIER_LABEL[runtime],
                                          worker_prefix=f"bench-{runtime}")
            scenarios["idle_sessions"] = {"run1": figures}
            print(describe("idle_sessions", figures), flush=True)
        if install and (not wanted or "install" in wanted):
            figures = package_install(bench, install)
            scenarios["install"] = {"run1": figures}
            print(describe(f"install {install}", figures), flush=True)

    return scenarios


TIER_LABEL = {"runc": "runc", "runsc": "gvisor"}


def side_by_side(result: dict[str, Any]) -> list[str]:
    """runc and gVisor figures of the scenarios both ran (run1 and run2 averaged), one row per figure."""
    rows = [f"{'scenario':<16} {'figure':<22} {'runc':>10} {'gvisor':>10} {'ratio':>7}"]
    runc, gvisor = result.get("scenarios", {}), result.get("gvisor", {}).get("scenarios", {})
    for name in SIDE_BY_SIDE:
        for key, label in (("p50_ms", "p50 ms"), ("p95_ms", "p95 ms"), ("per_min", "per min"),
                           ("cpu.service_ms", "CPU ms/exec (service)"), ("cpu.kernel_ms", "CPU ms/exec (kernel)"),
                           ("memory_per_session_mb", "host MB per session"),
                           ("cgroup_usage_mb_mean", "cgroup MB per session")):
            pair = [reporting.mean_figure(side.get(name, {}), key) for side in (runc, gvisor)]
            if pair[0] is None and pair[1] is None:
                continue
            cells = [f"{value:>10.1f}" if value is not None else f"{'-':>10}" for value in pair]
            ratio = f"{pair[1] / pair[0]:>6.1f}x" if pair[0] and pair[1] is not None else f"{'':>7}"
            rows.append(f"{name:<16} {label:<22} {cells[0]} {cells[1]} {ratio}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each wrk run")
    parser.add_argument("--workers", type=int, default=1, help="worker hosts to start")
    parser.add_argument("--requests", type=int, default=300, help="requests of the Python-driven scenarios")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds idle before the after-idle scenario")
    parser.add_argument("--capacity", type=int, default=500, help="idle sessions to hold on the host (0: skip)")
    parser.add_argument("--install", default="scikit-learn", help="package whose install is timed ('': skip)")
    parser.add_argument("--only", default="", help="comma-separated scenario names to run (default: all)")
    parser.add_argument("--runtimes", default="runc,runsc", help="sandbox runtimes to bench (runc, runsc)")
    parser.add_argument("--gvisor-capacity", type=int, default=20, help="idle sessions on the runsc stack")
    args = parser.parse_args()
    started = datetime.now(UTC)
    result: dict[str, Any] = {"started": started.strftime("%Y-%m-%d %H:%M UTC"),
                              "machine": reporting.machine_facts(), "args": vars(args), "scenarios": {}}
    wanted = {name for name in args.only.split(",") if name}

    cost = seccomp_cost("penny-sandbox:latest")
    result["seccomp"] = cost
    calls = cost["syscalls"]
    print(f"seccomp filter: built once {cost['build_once_ms']:.2f} ms; loaded per kernel p50 "
          f"{cost['load_p50_ms']:.2f} ms, p95 {cost['load_p95_ms']:.2f} ms; getppid "
          f"{calls['before']['getppid_ns']:.0f} -> {calls['after']['getppid_ns']:.0f} ns", flush=True)

    runtimes = [name for name in args.runtimes.split(",") if name]
    result["isolation_cost"] = {runtime: isolation_cost("penny-sandbox:latest", runtime) for runtime in runtimes}
    for runtime, figures in result["isolation_cost"].items():
        print(f"{runtime}: fork+exit+wait of a numpy-loaded Python {figures['fork_exit_wait_ms']} ms; getppid "
              f"{figures['getppid_us']} µs; open/write/close {figures['open_write_close_us']} µs", flush=True)
    if "runc" in runtimes:
        result["scenarios"] = run_stack(args, "runc", wanted, capacity=max(args.capacity, 0), install=args.install)
    if "runsc" in runtimes:
        only = {*GVISOR_SCENARIOS, "idle_sessions"} & (wanted or {*GVISOR_SCENARIOS, "idle_sessions"})
        if only:
            result["gvisor"] = {"scenarios": run_stack(args, "runsc", only,
                                                       capacity=max(args.gvisor_capacity, 0), install="")}
            print("\n".join(side_by_side(result)))

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    out = OUT_DIR / f"{started.strftime('%Y-%m-%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    reporting.plot(result, out.with_suffix(".png"))
    print(f"figures written to {out} and {out.with_suffix('.png')}")
    previous = reporting.previous_report(OUT_DIR, out)
    if previous:
        print(f"compared with {previous[0].name} (mean of both runs):")
        print("\n".join(reporting.comparison(previous[1], result)) or "  (no common figures)")


if __name__ == "__main__":
    main()
