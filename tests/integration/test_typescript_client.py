"""The TypeScript client (clients/typescript) against the real service: its node test suite, and the README example.

`make test` installs and builds the client first (`make ts-client`); here the test build is refreshed (tsc, no
network) and `node --test` runs against a stack of this module: one API without keys and, on the same Redis and
workers, a second API with one key, so the client is tested with and without auth.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import stack

from tests.conftest import require
from tests.integration.conftest import REPO, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker]

CLIENT = REPO / "clients" / "typescript"
KEY = uuid.uuid4().hex
NODE_TIMEOUT_S = 600
TEST_TIMEOUT_MS = 120_000  # one node test; a hung one fails alone, with its name


@dataclass(frozen=True)
class TsStack:
    url: str
    keyed_url: str


def _node_ready() -> None:
    require(shutil.which("node") is not None, "node is not installed")
    require((CLIENT / "node_modules" / ".package-lock.json").exists(),
            "the TypeScript client's packages are not installed (run `make ts-client`)")


@pytest.fixture(scope="module")
def ts_stack(services_ready: None, log_root: Path) -> Iterator[TsStack]:
    _node_ready()
    # MAX_EXECUTION_TIME at the service's default: the README's example asks for a 30 s timeout.
    with running_cluster("ts", log_root, POOL_SIZE="2", MAX_EXECUTION_TIME="30000") as cluster:
        port = stack.free_port()
        cluster.stack.start_api(SANDBOX_PORT=str(port), PENNY_API_KEYS=f"{KEY}:ts-tenant")
        yield TsStack(url=cluster.url, keyed_url=f"http://127.0.0.1:{port}")


def _run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None,
         timeout_s: float = NODE_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def _build() -> None:
    """Compile the client and its tests from the current sources (tsc: quick, no network)."""
    for script in ("build", "build:test"):
        build = _run(["npm", "run", "--silent", script], cwd=CLIENT, timeout_s=300)
        assert build.returncode == 0, build.stdout + build.stderr


def test_the_typescript_client_passes_its_suite_against_the_live_service(ts_stack: TsStack) -> None:
    _build()
    run = _run(["node", "--test", "--test-reporter=spec", f"--test-timeout={TEST_TIMEOUT_MS}",
                "build/test/integration/"], cwd=CLIENT, env={
        "PENNY_TEST_URL": ts_stack.url, "PENNY_TEST_KEYED_URL": ts_stack.keyed_url, "PENNY_TEST_API_KEY": KEY})
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    passed = re.search(r"^ℹ pass (\d+)$", report, re.MULTILINE)
    failed = re.search(r"^ℹ fail (\d+)$", report, re.MULTILINE)
    assert passed and failed, report
    assert int(failed[1]) == 0 and int(passed[1]) >= 20, report


def _readme_example() -> str:
    """The TypeScript example of the README's client section, as written there."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## TypeScript client"):]
    match = re.search(r"```typescript\n(.*?)```", section, re.DOTALL)
    assert match, "the README's TypeScript client section has no typescript example"
    return match[1]


def test_the_readme_example_runs_as_written(ts_stack: TsStack, tmp_path: Path) -> None:
    _build()
    example = _readme_example()
    assert "from '@penny/sandbox-client'" in example and "http://localhost:3003" in example
    # The package is resolved by its name, as an installed one is; only the address is the test stack's.
    package = tmp_path / "node_modules" / "@penny" / "sandbox-client"
    package.parent.mkdir(parents=True)
    package.symlink_to(CLIENT, target_is_directory=True)
    script = tmp_path / "example.mjs"
    script.write_text(example.replace("http://localhost:3003", ts_stack.url))
    run = _run(["node", str(script)], cwd=tmp_path, timeout_s=120)
    assert run.returncode == 0, run.stdout + run.stderr
    # console.log(event.type, event.data): `stdout { text: '0\\n1\\n' }` (output may come in several events).
    texts = re.findall(r"^stdout \{ text: '((?:[^'\\]|\\.)*)' \}$", run.stdout, re.MULTILINE)
    assert "".join(text.replace("\\n", "\n") for text in texts) == "".join(f"{i}\n" for i in range(10)), run.stdout
    assert run.stdout.startswith("queued {") and "\nresult {" in run.stdout, run.stdout
    assert "status: 'success'" in run.stdout.split("\nresult {")[1], run.stdout
