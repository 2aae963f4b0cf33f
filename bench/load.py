"""HTTP load from `wrk` (C, event loop): the bench measures the service, not its own client.

Each run writes a Lua script that POSTs one JSON body, counts every response whose status is not 200 or
whose body lacks the expected text as failed, and prints wrk's latency distribution as JSON at the end
(microseconds from wrk, converted to ms here). The generator's own CPU is what the run's child process used
(getrusage of waited children), so it can be reported beside the service's.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tiers import CpuTime

# wrk's percentiles for the CDF plot (and p50/p95/p99 for the table).
CDF_POINTS = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97.5, 99, 99.5, 99.9)

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
wrk.body = [==[%(body)s]==]
local expect = [==[%(expect)s]==]
local threads = {}
bad = 0
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, expect, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do failed = failed + t:get("bad") end
  local points = {}
  for _, p in ipairs({%(points)s}) do
    table.insert(points, string.format('"%%s": %%d', tostring(p), latency:percentile(p)))
  end
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "failed": %%d, "socket_errors": %%d, ' ..
    '"mean_us": %%f, "max_us": %%d, "percentiles_us": {%%s}}\\n',
    summary.requests, summary.duration, failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency.mean, latency.max, table.concat(points, ", ")))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: completed requests, failures, latency percentiles (ms) and wrk's own CPU."""

    connections: int
    requests: int
    failed: int
    duration_s: float
    percentiles_ms: dict[str, float]
    mean_ms: float
    loadgen_cpu: CpuTime

    @property
    def per_min(self) -> float:
        return (self.requests - self.failed) / self.duration_s * 60

    def summary(self) -> dict[str, object]:
        pct = self.percentiles_ms
        return {"connections": self.connections, "requests": self.requests, "failed": self.failed,
                "duration_s": round(self.duration_s, 2), "per_min": round(self.per_min),
                "p50_ms": pct["50"], "p95_ms": pct["95"], "p99_ms": pct["99"], "mean_ms": round(self.mean_ms, 3),
                "cdf_ms": pct, "loadgen_cpu_ms_per_exec": round(
                    self.loadgen_cpu.total_s * 1000 / max(self.requests, 1), 3)}


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed (make bench installs it: apt-get install wrk)")
    return path


def run_wrk(url: str, body: dict[str, object], expect: str, *, connections: int, seconds: float,
            api_key: str | None = None) -> LoadResult:
    """POST body to url with `connections` closed-loop connections for `seconds`."""
    auth = f'wrk.headers["Authorization"] = "Bearer {api_key}"' if api_key else ""
    script = LUA % {"auth": auth, "body": json.dumps(body), "expect": expect,
                    "points": ", ".join(str(p) for p in CDF_POINTS)}
    with tempfile.TemporaryDirectory(prefix="penny-wrk-") as tmp:
        path = Path(tmp) / "post.lua"
        path.write_text(script)
        threads = min(connections, 2)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        argv = [wrk_path(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                "-s", str(path), url]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((row for row in done.stdout.splitlines() if row.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return LoadResult(
        connections=connections, requests=int(data["requests"]),
        failed=int(data["failed"]) + int(data["socket_errors"]), duration_s=data["duration_us"] / 1e6,
        percentiles_ms={key: round(value / 1000, 3) for key, value in data["percentiles_us"].items()},
        mean_ms=data["mean_us"] / 1000,
        loadgen_cpu=CpuTime(after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
