"""The TypeScript client's own unit tests (node --test, a scripted fetch, no service), and its API types being
those the current OpenAPI spec generates (src/schema.ts, committed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


def npm(*args: str, env: dict[str, str] | None = None, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run npm in the client's directory (its packages installed by `make ts-client`)."""
    require(shutil.which("node") is not None and shutil.which("npm") is not None, "node and npm are not installed")
    require((CLIENT / "node_modules" / ".package-lock.json").exists(),
            "the TypeScript client's packages are not installed (run `make ts-client`)")
    return subprocess.run(["npm", *args], cwd=CLIENT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout_s, check=False)


def test_the_typescript_clients_unit_tests_pass() -> None:
    run = npm("test", "--silent")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout, run.stdout


def test_the_committed_api_types_match_what_the_spec_generates() -> None:
    run = npm("run", "--silent", "check-types", env={"PENNY_PYTHON": sys.executable})
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_built_client_uses_nothing_a_browser_lacks() -> None:
    build = npm("run", "--silent", "build")
    assert build.returncode == 0, build.stdout + build.stderr
    modules = sorted((CLIENT / "dist").glob("*.js"))
    assert modules
    for module in modules:
        text = module.read_text()
        for node_only in ('from "node:', "require(", "process.", "Buffer", "__dirname"):
            assert node_only not in text, f"{module.name} uses {node_only}"
