"""`make profile`: where each tier's CPU goes under 16-client print(1) load (py-spy, not a test).

Starts a stack as bench.py does, drives it with wrk for --seconds, and records every Python tier (the API's
gunicorn processes, the worker host, Flower) with py-spy at the same time, including idle threads off.
Writes the collapsed stacks (.cache/bench/profile-<tier>.txt, for flame graph tools) and prints, per tier,
the functions with the largest inclusive share of samples (only frames of this repository and of the
libraries it calls, grouped by function).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from load import run_wrk
from scenarios import PRINT

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))
import stack  # noqa: E402

OUT_DIR = Path(".cache") / "bench"


def top_functions(collapsed: Path, count: int) -> list[tuple[float, str]]:
    """(share of samples in %, function) by inclusive samples, largest first."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, samples_text = line.rpartition(" ")
        if not samples_text.isdigit():
            continue
        samples = int(samples_text)
        total += samples
        seen = set()
        for frame in stack_text.split(";"):
            name = frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")" \
                if " (" in frame else frame
            if name not in seen:
                seen.add(name)
                inclusive[name] += samples
    return [(samples * 100 / max(total, 1), name) for name, samples in inclusive.most_common(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with stack.local_stack(workers=1, worker_prefix="profile", flower_port=stack.free_port()) as (running, url):
        run_wrk(f"{url}/api/v1/execute", PRINT, "1", connections=4, seconds=3)
        recorders = []
        for name, proc in running.procs:
            if name == "redis":
                continue
            tier = "worker" if name.startswith("worker-") else name
            out = OUT_DIR / f"profile-{tier}.txt"
            recorders.append((tier, out, subprocess.Popen(
                [py_spy, "record", "--pid", str(proc.pid), "--subprocesses", "--nonblocking", "--format", "raw",
                 "--duration", str(args.seconds + 2), "--rate", "200", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        load = run_wrk(f"{url}/api/v1/execute", PRINT, "1", connections=16, seconds=args.seconds)
        for tier, out, recorder in recorders:
            recorder.wait(timeout=120)
            print(f"\n== {tier}: {load.requests} executions ({out})")
            for share, name in top_functions(out, args.top):
                print(f"  {share:5.1f} %  {name}")


if __name__ == "__main__":
    main()
