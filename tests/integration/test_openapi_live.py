"""The served OpenAPI document against the live stack: schemathesis generates requests from it (valid and
invalid ones) and checks every answer: no 5xx, a documented status, content type, headers and body schema,
invalid data refused, and authentication enforced (the stack has API keys)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from api import docs
from api.openapi import API_VERSION
from tests.conftest import require
from tests.integration.conftest import Cluster, running_cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

KEY, ADMIN = uuid.uuid4().hex, uuid.uuid4().hex
# The run's time budget (schemathesis --max-time) and per-operation examples: a few minutes in all.
MAX_TIME_S = 90
MAX_EXAMPLES = 15
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
          "ignored_auth", "unsupported_method")


@pytest.fixture(scope="module")
def keyed_cluster(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    # Short timeouts bound what a generated job may take (the document's maximum follows the setting).
    with running_cluster("openapi", log_root, POOL_SIZE="2", SESSION_POOL_SIZE="1", MAX_EXECUTION_TIME="2000",
                         PENNY_API_KEYS=f"{KEY}:fuzz", PENNY_ADMIN_KEYS=ADMIN, TENANT_MAX_SESSIONS="3",
                         CORS_ORIGINS="http://localhost:5173") as running:
        yield running


def test_the_live_api_serves_its_document_version_and_cors(keyed_cluster: Cluster) -> None:
    document = requests.get(f"{keyed_cluster.url}/api/v1/openapi.json", timeout=30)
    assert document.status_code == 200
    assert document.json()["components"]["schemas"]["ExecuteRequest"]["properties"]["timeout"]["maximum"] == 2000
    version = requests.get(f"{keyed_cluster.url}/api/v1/version", timeout=30).json()
    assert version["apiVersion"] == API_VERSION
    assert requests.get(f"{keyed_cluster.url}/health", timeout=30).json()["version"] == version["version"]
    preflight = requests.options(f"{keyed_cluster.url}/api/v1/execute", timeout=30, headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


# Invalid data must be refused: besides schemathesis's usual 4xx, with 413 (a body too large) and 414 (gunicorn's
# answer to a request line past 4094 bytes, e.g. a query parameter repeated many times).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429", "5xx"]
"""


def _schemathesis(cluster: Cluster, key: str, *filters: str, max_time_s: int, report: Path,
                  phases: str = "examples,coverage,fuzzing,stateful") -> None:
    seed = int(os.environ.get("SCHEMATHESIS_SEED") or random.randrange(2**31))
    config = report.parent / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
               f"{cluster.url}/api/v1/openapi.json",
               "--header", f"Authorization: Bearer {key}", "--checks", ",".join(CHECKS),
               "--max-examples", str(MAX_EXAMPLES), "--max-time", str(max_time_s), "--seed", str(seed),
               # One worker: hypothesis describing strategies in two threads trips CPython 3.11's ast.parse.
               "--workers", "1", "--request-timeout", "60", "--phases", phases,
               "--suppress-health-check", "all", "--report", "junit", "--report-junit-path", str(report),
               *filters]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=max_time_s + 120, check=False,
                         env={**os.environ, "NO_COLOR": "1"}, cwd=report.parent)  # its cache: not in the tree
    output = (ran.stdout + ran.stderr).replace(key, "<key>")
    assert ran.returncode == 0, f"schemathesis (seed {seed}, SCHEMATHESIS_SEED to replay) found:\n{output[-15000:]}"


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(keyed_cluster: Cluster,
                                                                           tmp_path: Path) -> None:
    # A tenant's key for every operation; the audit trail (admin keys only) gets an admin key next.
    _schemathesis(keyed_cluster, KEY, "--exclude-path", "/api/v1/audit", max_time_s=MAX_TIME_S,
                  report=tmp_path / "tenant.xml")
    _schemathesis(keyed_cluster, ADMIN, "--include-path", "/api/v1/audit", max_time_s=15,
                  report=tmp_path / "admin.xml", phases="examples,coverage,fuzzing")  # no links to follow


def test_the_docs_page_and_its_assets_are_served_by_the_api(keyed_cluster: Cluster) -> None:
    require(docs.assets_installed(), "Swagger UI's files are not installed (run `make docs-page`)")
    page = requests.get(f"{keyed_cluster.url}/docs", timeout=30)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
        asset = requests.get(f"{keyed_cluster.url}/docs/{name}", timeout=30)
        assert asset.status_code == 200 and len(asset.content) > 100, name
    assert "SwaggerUIBundle" in requests.get(f"{keyed_cluster.url}/docs/swagger-ui-bundle.js", timeout=30).text
