"""The web playground in a real browser (Debian's Chromium driven by Playwright) against the real stack.

The API of the `cluster` stack serves the built web/dist at `/`; each scenario of web/tests/browser runs as its
own node process with the stack's URL in PENNY_URL and saves a screenshot under .cache/screenshots/.
`make test` builds the page (`make web`) and installs Chromium (`make browser`) first.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import require
from tests.integration.conftest import REPO, Cluster, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

WEB = REPO / "web"
SCENARIOS_FILE = WEB / "tests" / "browser" / "playground.test.mjs"
SCREENSHOTS = REPO / ".cache" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
SCENARIO_TIMEOUT_S = 240
# The scenario names, read from the test file so that a new one runs without being listed twice.
SCENARIOS = re.findall(r'^test\("([^"]+)"', SCENARIOS_FILE.read_text(), flags=re.MULTILINE)


def serving_playground(cluster: Cluster) -> str:
    """The stack's URL once it serves the built playground (and the browser and Playwright are there)."""
    require((WEB / "dist" / "index.html").is_file(), "web/dist is not built (run `make web`)")
    require((WEB / "node_modules" / "playwright-core").is_dir(), "web/node_modules is missing (run `make web`)")
    require(CHROMIUM.is_file() and shutil.which("node") is not None, "chromium or node is missing (run `make browser`)")
    page = requests.get(f"{cluster.url}/", timeout=10)
    assert page.status_code == 200 and '<div id="root">' in page.text, page.text[:300]
    return cluster.url


@pytest.fixture(scope="module")
def playground(cluster: Cluster) -> str:
    return serving_playground(cluster)


def run_scenarios(test_file: str, url: str, pattern: str | None = None, **env: str) -> None:
    """`node --test` on one file of web/tests/browser (one scenario with pattern); fails with its report."""
    only = [f"--test-name-pattern=^{re.escape(pattern)}$"] if pattern else []
    argv = ["node", "--test", "--test-reporter=spec", *only, f"tests/browser/{test_file}"]
    env = {**os.environ, "PENNY_URL": url, "PENNY_SCREENSHOTS": str(SCREENSHOTS), **env}
    proc = subprocess.run(argv, cwd=WEB, env=env, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S,
                          check=False)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert re.search(r"^ℹ pass 1$", proc.stdout, flags=re.MULTILINE), report


def test_the_scenarios_are_found() -> None:
    assert len(SCENARIOS) >= 8, SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_playground_in_chromium(playground: str, scenario: str) -> None:
    run_scenarios(SCENARIOS_FILE.name, playground, scenario)


@pytest.fixture(scope="module")
def keyed_cluster(services_ready: None, log_root: Path) -> Iterator[tuple[Cluster, str]]:
    """A small stack of its own that requires an API key."""
    key = secrets.token_urlsafe(24)
    with running_cluster("keys", log_root, POOL_SIZE="1", PENNY_API_KEYS=f"{key}:web") as running:
        yield running, key


def test_playground_with_api_keys(keyed_cluster: tuple[Cluster, str]) -> None:
    cluster, key = keyed_cluster
    run_scenarios("keys.test.mjs", serving_playground(cluster), PENNY_API_KEY=key)
