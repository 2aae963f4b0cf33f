"""The sandbox runtime, run as a subprocess on the host (no container): protocol, limits, reset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


class Runtime:
    def __init__(self, workspace: Path, tmp: Path, *, mode: str = "stateless", policy: str | None = None,
                 preload: str = "json", **extra_env: str) -> None:
        env = {**os.environ, "PENNY_WIPE_PATHS": f"{workspace}:{tmp}", "PENNY_PRELOAD": preload,
               "PENNY_MODE": mode, **extra_env}
        if policy is not None:
            env["PENNY_POLICY"] = policy
        self.mode = mode
        self.jobs = 0
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox_runtime"], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready = self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line, "the runtime closed its output"
        return json.loads(line)

    def send(self, message: dict[str, Any]) -> None:
        if message.get("op") == "exec":
            self.jobs += 1
            message = {"id": f"job-{self.jobs}", **message}
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def send_together(self, *messages: dict[str, Any]) -> None:
        """Several messages in one write (the runtime reads them at once)."""
        for message in messages:
            if message.get("op") == "exec":
                self.jobs += 1
                message["id"] = f"job-{self.jobs}"
        self.proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def run(self, code: str, *, timeout_ms: int = 5000, limit: int = 100_000,
            variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self.send({"op": "exec", "code": code, "timeout_ms": timeout_ms, "output_limit_bytes": limit,
                   "variables": variables or {}})
        events = []
        while (event := self._read())["ev"] != "done":
            events.append(event)
        assert event["id"] == f"job-{self.jobs}"
        if self.mode == "stateless":
            assert self._read() == {"ev": "reset", "ok": True, "survivors": []}
        return event, events

    def close(self) -> int:
        self.proc.stdin.close()  # type: ignore[union-attr]
        return self.proc.wait(10)


def text(events: list[dict[str, Any]], stream: str) -> str:
    return "".join(e["text"] for e in events if e["ev"] == stream)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    (tmp_path / "ws").mkdir()
    (tmp_path / "tmp").mkdir()
    rt = Runtime(tmp_path / "ws", tmp_path / "tmp")
    yield rt
    rt.close()


def test_it_announces_ready_then_runs_a_cell_with_a_trailing_value(runtime: Runtime) -> None:
    assert runtime.ready["ev"] == "ready"
    done, events = runtime.run("import math\nprint(math.pi)\n6*7")
    assert done["status"] == "success"
    assert text(events, "stdout") == f"{__import__('math').pi}\n"
    assert done["result"] == {"type": "int", "repr": "42"}
    assert done["error"] is None


def test_a_user_exception_is_an_error_with_the_users_frames_only(runtime: Runtime) -> None:
    done, _ = runtime.run("def f():\n    return 1/0\nf()")
    assert done["status"] == "error"
    assert done["error"]["type"] == "ZeroDivisionError"
    tb = "\n".join(done["error"]["traceback"])
    assert 'File "<cell>", line 3' in tb and 'line 2, in f' in tb and "return 1/0" in tb
    assert "sandbox_runtime" not in tb


def test_syntax_errors_report_the_line(runtime: Runtime) -> None:
    done, _ = runtime.run("x = 1\ndef f(:\n  pass")
    assert done["status"] == "error" and done["error"]["type"] == "SyntaxError"
    assert any("line 2" in line for line in done["error"]["traceback"])


def test_stderr_unicode_and_variables(runtime: Runtime) -> None:
    done, events = runtime.run("import sys\nprint('héllo ✓ 世界')\nprint(n * 2, file=sys.stderr)\nn",
                               variables={"n": 21})
    assert text(events, "stdout") == "héllo ✓ 世界\n"
    assert text(events, "stderr") == "42\n"
    assert done["result"] == {"type": "int", "repr": "21"}


def test_a_timeout_kills_the_loop_and_the_next_run_works(runtime: Runtime) -> None:
    started = time.monotonic()
    done, _ = runtime.run("while True: pass", timeout_ms=300)
    assert done["status"] == "timeout"
    assert time.monotonic() - started < 2
    assert runtime.run("1+1")[0]["result"]["repr"] == "2"


def test_output_over_the_limit_keeps_the_head_and_stops_the_run(runtime: Runtime) -> None:
    done, events = runtime.run("print('ab' * 1_000_000)\nprint('never')", limit=10_000)
    assert done["status"] == "output_limit" and done["truncated"] is True
    out = text(events, "stdout")
    assert len(out.encode()) == 10_000 and out.startswith("abab")


def test_output_streams_while_the_code_runs(runtime: Runtime) -> None:
    runtime.send({"op": "exec", "code": "import time\nprint('first')\ntime.sleep(1.5)\nprint('last')",
                  "timeout_ms": 5000, "output_limit_bytes": 1000})
    started = time.monotonic()
    first = runtime._read()
    assert first == {"ev": "stdout", "text": "first\n"}
    assert time.monotonic() - started < 1.0
    while runtime._read()["ev"] != "done":
        pass


def test_cancel_stops_a_running_cell(runtime: Runtime) -> None:
    runtime.send({"op": "exec", "code": "import time\ntime.sleep(30)", "timeout_ms": 60000,
                  "output_limit_bytes": 1000})
    runtime.send({"op": "cancel"})
    assert runtime._read()["status"] == "cancelled"


def test_nothing_of_a_job_survives_into_the_next(runtime: Runtime, tmp_path: Path) -> None:
    ws, tmp = tmp_path / "ws", tmp_path / "tmp"
    _, events = runtime.run(
        "import os, subprocess\n"
        f"open({str(ws / 'secret')!r}, 'w').write('x')\n"
        f"os.makedirs({str(tmp / 'd' / 'e')!r}); os.chmod({str(tmp / 'd')!r}, 0)\n"
        "p = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
        "print(p.pid)\n"
        "leftover = 1\n"
    )
    leftover_pid = int(text(events, "stdout"))
    done, events = runtime.run(
        "import os\n"
        f"print(sorted(os.listdir({str(ws)!r})), sorted(os.listdir({str(tmp)!r})))\n"
        "'leftover' in globals()"
    )
    assert text(events, "stdout") == "[] []\n"
    assert done["result"]["repr"] == "False"
    assert not Path(f"/proc/{leftover_pid}").exists()  # killed and reaped before the second job ran


def test_exit_codes_and_sys_exit(runtime: Runtime) -> None:
    assert runtime.run("import sys; sys.exit(0)")[0]["status"] == "success"
    done, _ = runtime.run("raise SystemExit(3)")
    assert done["status"] == "error" and done["error"]["type"] == "SystemExit"
    done, _ = runtime.run("import os; os._exit(4)")
    assert done["status"] == "error" and "code 4" in done["error"]["message"]


def test_memory_error_is_memory_exceeded(runtime: Runtime) -> None:
    done, _ = runtime.run("raise MemoryError()")
    assert done["status"] == "memory_exceeded"


def test_end_of_input_stops_the_runtime(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    rt = Runtime(tmp_path / "a", tmp_path / "a")
    assert rt.close() == 0


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path, tmp_path, mode="session")
    yield rt
    rt.close()


def test_a_session_keeps_variables_imports_functions_and_files(session: Runtime, tmp_path: Path) -> None:
    session.run(f"import json\nx = 41\ndef inc(v):\n    return v + 1\nopen({str(tmp_path / 'f')!r}, 'w').write('kept')")
    done, _ = session.run(f"(inc(x), json.dumps([1]), open({str(tmp_path / 'f')!r}).read())")
    assert done["result"]["repr"] == "(42, '[1]', 'kept')"
    assert done["state"] == "kept"


def test_a_session_timeout_interrupts_and_keeps_the_state(session: Runtime) -> None:
    session.run("x = 'still here'")
    done, _ = session.run("while True:\n    pass", timeout_ms=300)
    assert done["status"] == "timeout" and done["state"] == "kept"
    assert done["error"]["type"] == "KeyboardInterrupt"
    assert session.run("x")[0]["result"]["repr"] == "'still here'"


def test_an_uninterruptible_session_is_lost_not_recreated(session: Runtime) -> None:
    session.run("x = 1")
    started = time.monotonic()
    done, _ = session.run("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
                          timeout_ms=300)
    assert done["status"] == "timeout" and done["state"] == "lost"
    assert time.monotonic() - started < 5
    after, _ = session.run("x")
    assert after["status"] == "error" and after["error"]["type"] == "SessionLost" and after["state"] == "lost"


def test_a_session_output_flood_is_cut_and_the_state_kept(session: Runtime) -> None:
    session.run("y = 5")
    done, events = session.run("while True:\n    print('x' * 1000)", limit=5000)
    assert done["status"] == "output_limit" and done["truncated"] and done["state"] == "kept"
    assert len(text(events, "stdout")) == 5000
    assert session.run("y")[0]["result"]["repr"] == "5"


def test_cancel_in_a_session_keeps_the_state(session: Runtime) -> None:
    # The cancel arrives in the same write as its request: the runtime reads it before the kernel has even
    # begun the cell (the race that lost the state). Repeated, and with a cell that ends at once as well.
    session.run("z = 3")
    for code in ("import time\ntime.sleep(30)", "z = z + 0"):
        for _ in range(10):
            session.send_together({"op": "exec", "code": code, "timeout_ms": 60000, "output_limit_bytes": 1000},
                                  {"op": "cancel"})
            done = session._read()
            assert done["status"] == "cancelled" and done["state"] == "kept", done
    assert session.run("z")[0]["result"]["repr"] == "3"


def test_cancel_of_a_running_session_cell_interrupts_it_and_keeps_the_state(session: Runtime) -> None:
    session.run("z = 4")
    session.send({"op": "exec", "code": "import time\nprint('in', flush=True)\ntime.sleep(30)",
                  "timeout_ms": 60000, "output_limit_bytes": 1000})
    assert session._read() == {"ev": "stdout", "text": "in\n"}  # the cell runs: now interrupt it
    session.send({"op": "cancel"})
    done = session._read()
    assert done["status"] == "cancelled" and done["state"] == "kept"
    assert done["error"]["type"] == "KeyboardInterrupt"
    assert session.run("z")[0]["result"]["repr"] == "4"


def test_results_summarise_the_user_variables(runtime: Runtime) -> None:
    done, _ = runtime.run("import json\nn = 3\nname = 'ab'\nbig = list(range(10_000_000))\n_hidden = 1\n"
                          "def f(): pass")
    variables = done["variables"]
    assert set(variables) == {"n", "name", "big", "f", "_hidden"}
    assert variables["n"] == {"type": "int", "repr": "3", "size": 28}
    assert variables["name"]["len"] == 2
    assert variables["big"]["len"] == 10_000_000 and len(variables["big"]["repr"]) <= 203
    assert "json" not in variables
