"""Controlled package installation: allowlisted wheels from the host's cache, never a network in the sandbox."""

from __future__ import annotations

import ast

import pytest
import requests

from tests.integration.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow, pytest.mark.tiers]

TABULATE_SMOKE = "import tabulate\ntabulate.tabulate([[1, 2]], headers=['a', 'b'])"


def _session(cluster: Cluster, **body: object) -> requests.Response:
    return requests.post(f"{cluster.url}/api/v1/sessions", json=body, timeout=120)


def _install(cluster: Cluster, session_id: str, *packages: str) -> dict:
    response = requests.post(f"{cluster.url}/api/v1/packages/install",
                             json={"sessionId": session_id, "packages": list(packages)}, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_package_installs_into_one_session_only(cluster: Cluster) -> None:
    first = _session(cluster).json()["sessionId"]
    second = _session(cluster).json()["sessionId"]
    missing = cluster.execute("import tabulate", sessionId=first)
    assert missing["status"] == "error" and missing["error"]["type"] == "ModuleNotFoundError"
    report = _install(cluster, first, "tabulate")
    assert report["failed"] == [] and report["installed"][0]["name"] == "tabulate"
    assert report["installed"][0]["version"].startswith("0.")
    table = cluster.execute(TABULATE_SMOKE, sessionId=first)
    assert table["status"] == "success" and "a    b" in ast.literal_eval(table["result"]["repr"])
    other = cluster.execute("import tabulate", sessionId=second)
    assert other["status"] == "error" and other["error"]["type"] == "ModuleNotFoundError"
    cannot_write = cluster.execute("open('/opt/penny/site/evil.py', 'w')", sessionId=first)
    assert cannot_write["error"]["type"] == "FilesystemPolicyError"  # (and the mount is read-only: test_attacks)
    for session_id in (first, second):
        requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_refusals_come_with_reasons_and_change_nothing(cluster: Cluster) -> None:
    session_id = _session(cluster).json()["sessionId"]
    report = _install(cluster, session_id, "left-pad", "tabulate==0.8.10")
    reasons = {f["name"]: f["reason"] for f in report["failed"]}
    assert report["installed"] == []
    assert "allowlist" in reasons["left-pad"] and "outside the allowed range" in reasons["tabulate"]
    assert cluster.execute("import tabulate", sessionId=session_id)["status"] == "error"
    requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_the_sandbox_still_has_no_network_after_an_install(open_cluster: Cluster) -> None:
    cluster = open_cluster  # socket is blocked by the default policy: this checks the container itself
    session_id = _session(cluster, packages=["tabulate"]).json()["sessionId"]
    result = cluster.execute("import socket, tabulate\n"
                             "try:\n    socket.create_connection(('1.1.1.1', 443), timeout=2)\n    reached = True\n"
                             "except OSError:\n    reached = False\n"
                             "(reached, sorted(n for _, n in socket.if_nameindex()))", sessionId=session_id)
    assert result["status"] == "success", result["error"]
    assert ast.literal_eval(result["result"]["repr"]) == (False, ["lo"])
    requests.delete(f"{cluster.url}/api/v1/sessions/{session_id}", timeout=30)


def test_a_stateless_job_gets_its_packages_and_the_next_job_does_not(cluster: Cluster) -> None:
    result = cluster.execute(TABULATE_SMOKE, packages=["tabulate"])
    assert result["status"] == "success", result["error"]
    assert result["packages"]["installed"][0]["name"] == "tabulate"
    for _ in range(6):  # every sandbox of the pool
        assert cluster.execute("import tabulate")["error"]["type"] == "ModuleNotFoundError"


def test_the_listing_shows_the_allowlist_and_preinstalled_versions(cluster: Cluster) -> None:
    packages = requests.get(f"{cluster.url}/api/v1/packages", timeout=30).json()["packages"]
    numpy = next(p for p in packages if p["name"] == "numpy")
    assert numpy["preinstalled"] and numpy["version"].count(".") >= 1
    ml = requests.get(f"{cluster.url}/api/v1/packages", params={"category": "ml"}, timeout=30).json()["packages"]
    assert [p["name"] for p in ml] == ["scikit-learn"]
