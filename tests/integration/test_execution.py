"""Stateless execution over real HTTP, Redis, Celery and Docker: what a user gets back."""

from __future__ import annotations

import math
import os

import pytest
import requests

from api.schemas import ErrorEnvelopeSchema, ExecutionResultSchema
from core.isolation import Tier
from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.tiers]
# The kernel release gVisor's Sentry reports to applications (a fixed, made-up Linux version).
GVISOR_RELEASE = "4.4.0"


def test_a_job_runs_on_its_tiers_kernel(open_cluster: Cluster, tier: Tier) -> None:
    result = open_cluster.execute("import os, platform\nprint(platform.release())\nprint(os.uname().version)")
    assert result["status"] == "success", result
    release, version = result["stdout"].splitlines()
    host = os.uname()
    if tier is Tier.GVISOR:
        assert release == GVISOR_RELEASE and release != host.release
    else:
        assert release == host.release and version == host.version  # the host's own kernel


def test_a_program_gives_stdout_and_its_trailing_value(cluster: Cluster) -> None:
    result = cluster.execute("import math\nprint(math.pi)\n6*7")
    assert ExecutionResultSchema().validate(result) == {}
    assert result["status"] == "success"
    assert result["stdout"] == f"{math.pi}\n" and result["stderr"] == ""
    assert result["result"] == {"type": "int", "repr": "42"}
    assert result["error"] is None and result["sessionId"] is None and result["truncated"] is False
    assert result["worker"].startswith(cluster.worker_prefix)
    assert result["metrics"]["durationMs"] >= 0 and result["metrics"]["peakMemoryBytes"] > 0


def test_a_raising_program_is_an_error_result_with_its_own_frames(cluster: Cluster) -> None:
    result = cluster.execute("print('before')\ndef f(x):\n    return x / 0\nf(1)")
    assert result["status"] == "error" and result["stdout"] == "before\n"
    assert result["error"]["type"] == "ZeroDivisionError"
    traceback = "\n".join(result["error"]["traceback"])
    assert 'File "<cell>", line 4' in traceback and "return x / 0" in traceback
    assert "sandbox_runtime" not in traceback and "/opt/penny" not in traceback


def test_stderr_and_unicode_come_back_intact(open_cluster: Cluster) -> None:
    result = open_cluster.execute("import sys\nprint('héllo ✓ 世界 🐍')\nprint('warn ü', file=sys.stderr)")
    assert result["stdout"] == "héllo ✓ 世界 🐍\n"
    assert result["stderr"] == "warn ü\n"


def test_variables_are_injected_before_the_run(cluster: Cluster) -> None:
    result = cluster.execute("f'{name}: {sum(values)}'", variables={"name": "total", "values": [1, 2, 3.5]})
    assert result["result"] == {"type": "str", "repr": "'total: 6.5'"}


def test_the_data_science_stack_imports_and_works(cluster: Cluster) -> None:
    code = ("import numpy as np, pandas as pd, matplotlib.pyplot as plt, scipy, plotly\n"
            "df = pd.DataFrame({'a': np.arange(4)})\n"
            "plt.plot(df['a']); plt.savefig('/workspace/p.png')\n"
            "int(df['a'].sum())")
    result = cluster.execute(code)
    assert result["status"] == "success", result["error"]
    assert result["result"]["repr"] == "6"
    assert result["stderr"] == ""


def test_syntax_errors_are_results_not_failures(cluster: Cluster) -> None:
    result = cluster.execute("def broken(:\n    pass")
    assert result["status"] == "error" and result["error"]["type"] == "SyntaxError"


@pytest.mark.parametrize("kwargs, status, code", [
    ({"json": {"timeout": 5}}, 400, "validation_error"),
    ({"json": {"code": "1", "timeout": 10**9}}, 400, "validation_error"),
    ({"data": "print(1)", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ({"json": {"code": "#" * (1024 * 1024 + 1)}}, 413, "payload_too_large"),
    ({"json": {"code": "1", "sessionId": "abc"}}, 404, "not_found"),
    ({"json": {"code": "1", "packages": ["left-pad"]}}, 400, "validation_error"),
])
def test_bad_requests_get_the_error_envelope(cluster: Cluster, kwargs: dict, status: int, code: str) -> None:
    response = requests.post(f"{cluster.url}/api/v1/execute", timeout=30, **kwargs)
    assert response.status_code == status
    body = response.json()
    assert ErrorEnvelopeSchema().validate(body) == {} and body["error"]["code"] == code


def test_unknown_job_is_404(cluster: Cluster) -> None:
    response = requests.get(f"{cluster.url}/api/v1/jobs/does-not-exist", timeout=30)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_static_findings_are_reported_and_strict_mode_refuses_before_running(cluster: Cluster) -> None:
    # Not strict: the job runs, the static finding is reported, and the runtime refuses the import itself.
    result = cluster.execute("print('before')\nimport subprocess\nprint('after')")
    assert result["status"] == "policy_violation" and result["stdout"] == "before\n"
    assert [(f["rule"], f.get("source")) for f in result["findings"]] == [("blocked_import", None),
                                                                        ("blocked_import", "runtime")]
    assert result["findings"][1]["target"] == "subprocess" and result["error"]["type"] == "PolicyViolationError"
    refused = requests.post(f"{cluster.url}/api/v1/execute",
                            json={"code": "import subprocess\nprint('ran')", "strict": True}, timeout=30)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "policy_violation"
    assert refused.json()["error"]["details"]["errors"][0]["line"] == 1
    report = requests.post(f"{cluster.url}/api/v1/validate", json={"code": "x = eval('1')"}, timeout=30).json()
    assert report["valid"] is False and report["errors"][0]["rule"] == "blocked_builtin"
