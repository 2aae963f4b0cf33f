"""What one stateless job costs inside its sandbox: CPU (user, system) and page faults per job.

Starts one stateless sandbox the way a worker does (workers.backend.DockerBackend, the same hardening),
runs `--jobs` executions of the given code back to back, each with its reset, and reads the container's
cgroup (cpuacct.usage, cpuacct.stat, memory.stat pgfault) around them. Not a test; run it under the
integration lock: `python bench/runtime_cost.py --jobs 300`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docker  # noqa: E402

from core.settings import Settings  # noqa: E402
from sandbox_runtime import protocol  # noqa: E402
from workers.backend import DockerBackend  # noqa: E402

CGROUP = Path("/sys/fs/cgroup")
USER_HZ = os.sysconf("SC_CLK_TCK")


def cgroup_figures(container_id: str) -> dict[str, float]:
    """Cumulative CPU ns, user and system ms, and page faults of the container (cgroup v1)."""
    cpuacct = CGROUP / "cpuacct" / "docker" / container_id
    stat = dict(line.split() for line in (cpuacct / "cpuacct.stat").read_text().splitlines())
    memory = dict(line.split() for line in (CGROUP / "memory" / "docker" / container_id / "memory.stat")
                  .read_text().splitlines())
    return {"cpu_ms": int((cpuacct / "cpuacct.usage").read_text()) / 1e6,
            "user_ms": int(stat["user"]) * 1000 / USER_HZ, "system_ms": int(stat["system"]) * 1000 / USER_HZ,
            "faults": int(memory["total_pgfault"]), "major_faults": int(memory["total_pgmajfault"])}


def run(code: str, jobs: int, hint: str | None) -> dict[str, float]:
    site_root = tempfile.mkdtemp(prefix="penny-cost-")
    os.chmod(site_root, 0o755)
    settings = Settings.from_env({**os.environ, "SITE_ROOT": site_root})
    backend = DockerBackend(docker.from_env(), settings)
    sandbox = backend.start("cost")
    try:
        for _ in range(20):  # warm-up: the first jobs fault in the supervisor's own paths
            _job(sandbox, code, hint)
        before, started = cgroup_figures(sandbox.container_id), time.perf_counter()
        for _ in range(jobs):
            _job(sandbox, code, hint)
        wall_ms = (time.perf_counter() - started) * 1000
        after = cgroup_figures(sandbox.container_id)
    finally:
        sandbox.destroy()
    per_job = {name: round((after[name] - before[name]) / jobs, 3) for name in after}
    per_job["wall_ms"] = round(wall_ms / jobs, 3)
    return per_job


def _job(sandbox: object, code: str, hint: str | None) -> None:
    extra = {"parent": hint} if hint else {}
    request = protocol.Exec(id=os.urandom(6).hex(), code=code, timeout_ms=10_000, output_limit_bytes=1 << 20,
                            **extra)  # type: ignore[arg-type]
    sandbox.send(request)  # type: ignore[attr-defined]
    done = sandbox.collect(request, lambda _stream, _text: None)  # type: ignore[attr-defined]
    if done.status != "success" or not sandbox.confirm_reset():  # type: ignore[attr-defined]
        raise RuntimeError(f"the job ended {done.status}: {done.error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--code", default="print(1)")
    parser.add_argument("--parent", default=None, help="the Exec message's kernel parent hint, if any")
    args = parser.parse_args()
    print(json.dumps(run(args.code, args.jobs, args.parent)))


if __name__ == "__main__":
    main()
