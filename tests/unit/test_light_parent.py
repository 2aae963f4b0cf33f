"""The light parent (sandbox_runtime.light_parent), run on the host: a kernel of either parent runs the same
way, a light one has none of the preloads, and the light parent can be stopped or lost without a job failing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.kernel_parent import HEAVY, LIGHT, kernel_parent
from tests.unit.test_runtime import Runtime, text

# A module the runtime itself never imports: present in a kernel only if the supervisor preloaded it.
PRELOADED = "fractions"
PROBE = f"import os, sys\nprint({PRELOADED!r} in sys.modules, os.getppid())"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    (tmp_path / "ws").mkdir()
    (tmp_path / "tmp").mkdir()
    rt = Runtime(tmp_path / "ws", tmp_path / "tmp", preload=PRELOADED)
    yield rt
    rt.close()


def run_on(runtime: Runtime, code: str, parent: str) -> tuple[dict, str]:
    runtime.send({"op": "exec", "code": code, "timeout_ms": 5000, "output_limit_bytes": 100_000, "parent": parent})
    events = []
    while (event := runtime._read())["ev"] != "done":
        events.append(event)
    assert runtime._read() == {"ev": "reset", "ok": True, "survivors": []}
    return event, text(events, "stdout")


def test_a_light_kernel_has_no_preloads_and_is_the_supervisors_child(runtime: Runtime) -> None:
    supervisor = runtime.proc.pid
    for parent, preloaded in ((LIGHT, False), (HEAVY, True), (LIGHT, False), (LIGHT, False), (HEAVY, True)):
        done, stdout = run_on(runtime, PROBE, parent)
        assert done["status"] == "success", done
        assert stdout == f"{preloaded} {supervisor}\n"


def test_a_light_kernel_imports_what_it_needs_itself(runtime: Runtime) -> None:
    done, stdout = run_on(runtime, f"import {PRELOADED}\nprint({PRELOADED}.Fraction(1, 3) * 3)", LIGHT)
    assert done["status"] == "success" and stdout == "1\n"


LIGHT_PARENT_PID = (
    "import os\n"
    "me = os.getppid()\n"
    "def ppid(pid):\n"
    "    with open(f'/proc/{pid}/stat') as f: return int(f.read().rsplit(')', 1)[1].split()[1])\n"
    "kids = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()"
    " and ppid(int(p)) == me]\n"
)


def test_a_stopped_light_parent_is_woken_for_the_next_job(runtime: Runtime) -> None:
    done, _ = run_on(runtime, LIGHT_PARENT_PID + "import signal\n[os.kill(k, signal.SIGSTOP) for k in kids]", LIGHT)
    assert done["status"] == "success"
    done, stdout = run_on(runtime, PROBE, LIGHT)
    assert done["status"] == "success" and stdout == f"False {runtime.proc.pid}\n"


def test_a_killed_light_parent_makes_later_kernels_heavy_ones(runtime: Runtime) -> None:
    done, _ = run_on(runtime, LIGHT_PARENT_PID + "import signal\n[os.kill(k, signal.SIGKILL) for k in kids]", LIGHT)
    assert done["status"] == "success"
    for _ in range(3):
        done, stdout = run_on(runtime, PROBE, LIGHT)
        assert done["status"] == "success" and stdout == f"True {runtime.proc.pid}\n"


def test_a_job_that_leaves_a_process_behind_is_cleaned_up_and_light_jobs_still_run(runtime: Runtime) -> None:
    done, _ = run_on(runtime, "import os, time\nif os.fork() == 0:\n    time.sleep(300)\n    os._exit(0)", LIGHT)
    assert done["status"] == "success"
    done, stdout = run_on(runtime, PROBE, LIGHT)
    assert done["status"] == "success" and stdout == f"True {runtime.proc.pid}\n"


@pytest.mark.parametrize(("code", "parent"), [
    ("print(1)", LIGHT),
    ("import os, json\nfrom collections import abc\nprint(os.getpid())", LIGHT),
    ("from . import x", LIGHT),
    ("import numpy as np", HEAVY),
    ("import os\nfrom pandas import DataFrame", HEAVY),
    ("import matplotlib.pyplot as plt", HEAVY),
    ("import (", HEAVY),
    ("x = 1\n" * 10_000, HEAVY),
])
def test_the_hint_is_light_only_for_standard_library_imports(code: str, parent: str) -> None:
    assert kernel_parent(code) == parent
