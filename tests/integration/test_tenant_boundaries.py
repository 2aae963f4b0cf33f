"""What one tenant can do to another through shared machinery: the package store, odd ids, the audit trail.

Two tenants' keys on one stack whose runtime policy is off (`import os` allowed): the attacker holds one key
and the strongest position inside its sandbox, so these tests prove the worker's design, not the policy
layer in front of it. Each test asserts that the side effect did not happen.
"""

from __future__ import annotations

import ast
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from packaging.version import Version

from core.policies import PackagePolicy
from tests.integration.conftest import REPO, Cluster, _open_policy_dir, running_cluster
from workers.store import STORE_EPOCH_S

pytestmark = [pytest.mark.redis, pytest.mark.docker, pytest.mark.slow]

KEY_ACME, KEY_BETA, ADMIN = (uuid.uuid4().hex for _ in range(3))
OLD, NEW = "10.0.0", "10.8.0"  # two allowlisted versions of more-itertools
# toolz's allowlist range is >=0.12,<2: its oldest release there, and the newest there when this was written
# (the index may offer a newer one since; never the old one).
TOOLZ_OLD, TOOLZ_KNOWN_BEST = "0.12.0", "1.2.0"
# What a job sees of its installed copy: version, and per file its hash, link count and ctime.
PROBE = """
import hashlib, os, more_itertools
root = '/opt/penny/site/current/more_itertools'
files = {}
for name in sorted(os.listdir(root)):
    path = os.path.join(root, name)
    if os.path.isfile(path):
        st = os.stat(path)
        files[name] = (hashlib.sha256(open(path, 'rb').read()).hexdigest(), st.st_nlink, st.st_ctime_ns)
(more_itertools.__version__, files)
"""


class Tenant:
    """HTTP calls made with one API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", headers=self.headers, timeout=300, **kwargs)

    def session(self, *packages: str, **body: Any) -> str:
        response = self.call("POST", "/api/v1/sessions", json={"packages": list(packages), **body})
        assert response.status_code == 201, response.text
        return str(response.json()["sessionId"])

    def run(self, session_id: str, code: str) -> Any:
        response = self.call("POST", "/api/v1/execute", json={"code": code, "sessionId": session_id})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["status"] == "success", result["error"]
        return ast.literal_eval(result["result"]["repr"])

    def delete(self, session_id: str) -> None:
        assert self.call("DELETE", f"/api/v1/sessions/{session_id}").status_code == 204


@pytest.fixture(scope="module")
def boundary_cluster(services_ready: None, log_root: Path) -> Iterator[Cluster]:
    root = log_root / f"boundaries-{uuid.uuid4().hex[:8]}"
    with running_cluster("boundaries", log_root, POOL_SIZE="1", SESSION_POOL_SIZE="2",
                         POLICY_DIR=str(_open_policy_dir(root)), WHEEL_CACHE_DIR=str(root / "wheels"),
                         PENNY_API_KEYS=f"{KEY_ACME}:acme,{KEY_BETA}:beta", PENNY_ADMIN_KEYS=ADMIN) as running:
        yield running


def _store_tree(cluster: Cluster, version: str) -> Path:
    store = Path(cluster.stack.env["WHEEL_CACHE_DIR"]) / "store"
    found = [tree for tree in store.iterdir() if (tree / f"more_itertools-{version}.dist-info").is_dir()]
    assert len(found) == 1, found
    return found[0]


def _digest(tree: Path) -> dict[str, tuple[str, int, int, int]]:
    return {str(p.relative_to(tree)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode,
                                       p.stat().st_nlink, p.stat().st_ctime_ns)
            for p in sorted(tree.rglob("*")) if p.is_file()}


def test_a_forced_reinstall_by_one_tenant_changes_nothing_another_tenant_imports(
        boundary_cluster: Cluster) -> None:
    acme, beta = Tenant(boundary_cluster.url, KEY_ACME), Tenant(boundary_cluster.url, KEY_BETA)
    running = beta.session(f"more-itertools=={OLD}")
    version, seen = beta.run(running, PROBE)
    assert version == OLD and all(links == 1 for _, links, _ in seen.values())
    store_before = _digest(_store_tree(boundary_cluster, OLD))
    assert store_before and all(mode & 0o777 == 0o444 for _, mode, _, _ in store_before.values())

    # acme installs the same version (a shared hard link would change beta's link counts), then forces NEW.
    target = acme.session(f"more-itertools=={OLD}")
    report = acme.call("POST", "/api/v1/packages/install",
                       json={"sessionId": target, "packages": [f"more-itertools=={NEW}"], "force": True}).json()
    assert report["installed"] == [{"name": "more-itertools", "version": NEW}], report
    assert acme.run(target, PROBE)[0] == NEW

    # beta's running session: the same bytes, one link each, the same ctimes; the store's copy unchanged.
    assert beta.run(running, PROBE) == (OLD, seen)
    assert _digest(_store_tree(boundary_cluster, OLD)) == store_before
    later = beta.session(f"more-itertools=={OLD}")
    version, files = beta.run(later, PROBE)
    assert version == OLD and {n: h for n, (h, _, _) in files.items()} == {n: h for n, (h, _, _) in seen.items()}
    for session_id in (running, later):
        beta.delete(session_id)
    acme.delete(target)


def test_an_unpinned_install_gets_the_best_allowed_version_not_the_best_cached(
        boundary_cluster: Cluster) -> None:
    # toolz: no other test of this module installs it, so the cluster's fresh cache holds only what we put there.
    acme, beta = Tenant(boundary_cluster.url, KEY_ACME), Tenant(boundary_cluster.url, KEY_BETA)
    pinned = acme.session(f"toolz=={TOOLZ_OLD}")
    cache = Path(boundary_cluster.stack.env["WHEEL_CACHE_DIR"])
    assert sorted(p.name for p in cache.glob("toolz-*.whl")) == [f"toolz-{TOOLZ_OLD}-py3-none-any.whl"]
    unpinned = beta.session("toolz")
    version, mtime = beta.run(unpinned, "import os, toolz\n(toolz.__version__, os.stat(toolz.__file__).st_mtime)")
    allowed = PackagePolicy.load(REPO / "policies").get("toolz")
    assert allowed is not None and allowed.versions.contains(version)
    assert Version(version) >= Version(TOOLZ_KNOWN_BEST), version  # not the cached TOOLZ_OLD
    assert mtime == STORE_EPOCH_S  # not when the wheel was unpacked
    beta.delete(unpinned)
    acme.delete(pinned)


def _odd_ids(real: str) -> list[str]:
    return [f"{real}:events", real.upper(), real + "0", real[:-1], "%3A".join([real, "events"])]


def test_odd_ids_and_another_tenants_ids_are_404_on_every_verb(boundary_cluster: Cluster) -> None:
    acme, beta = Tenant(boundary_cluster.url, KEY_ACME), Tenant(boundary_cluster.url, KEY_BETA)
    job_id = acme.call("POST", "/api/v1/jobs", json={"code": "'x' * 1_000_000"}).json()["jobId"]
    session_id = acme.session(variables={"secret": "acme-only"})
    attempts: list[tuple[Tenant, str, str, dict[str, Any]]] = []
    for tenant, ids in ((acme, _odd_ids(job_id)), (beta, [job_id, *_odd_ids(job_id)])):
        for odd in ids:
            attempts += [(tenant, "GET", f"/api/v1/jobs/{odd}", {}), (tenant, "GET", f"/api/v1/jobs/{odd}/events", {}),
                         (tenant, "DELETE", f"/api/v1/jobs/{odd}", {})]
    for tenant, ids in ((acme, _odd_ids(session_id)), (beta, [session_id, *_odd_ids(session_id)])):
        for odd in ids:
            attempts += [
                (tenant, "GET", f"/api/v1/sessions/{odd}", {}),
                (tenant, "PUT", f"/api/v1/sessions/{odd}/variables", {"json": {"variables": {"secret": "beta"}}}),
                (tenant, "POST", "/api/v1/execute", {"json": {"code": "secret", "sessionId": odd}}),
                (tenant, "POST", "/api/v1/packages/install", {"json": {"sessionId": odd, "packages": ["tabulate"]}}),
                (tenant, "DELETE", f"/api/v1/sessions/{odd}", {}),
            ]
    for tenant, method, path, kwargs in attempts:
        response = tenant.call(method, path, **kwargs)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.json()["error"]["code"] == "not_found" and "Retry-After" not in response.headers
        assert "acme-only" not in response.text and "xxxx" not in response.text
    # Nothing changed: acme's job ran to its end, its session and variable are intact.
    assert acme.run(session_id, "secret") == "acme-only"
    assert acme.call("GET", f"/api/v1/jobs/{job_id}").status_code == 200
    acme.delete(session_id)
    assert "redis unavailable" not in (boundary_cluster.stack.log_dir / "api.log").read_text()


def _audit(cluster: Cluster, **params: Any) -> list[dict[str, Any]]:
    response = requests.get(f"{cluster.url}/api/v1/audit", params={"limit": 1000, **params},
                            headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)
    assert response.status_code == 200, response.text
    return list(response.json()["records"])


def test_session_create_and_delete_are_audited_without_values(boundary_cluster: Cluster) -> None:
    beta = Tenant(boundary_cluster.url, KEY_BETA)
    secret = f"s3cret-{uuid.uuid4().hex}"
    session_id = beta.session("tabulate", variables={"db_password": secret})
    beta.delete(session_id)
    records = [r for r in _audit(boundary_cluster, tenant="beta") if r["sessionId"] == session_id
               and r["kind"].startswith("session_")]
    assert [r["kind"] for r in records] == ["session_delete", "session_create"], records
    create = records[1]
    assert create["variables"] == [{"name": "db_password", "bytes": len(secret) + 2}]
    assert create["packages"] == ["tabulate"] and create["status"] == "created"
    assert secret not in str(_audit(boundary_cluster))
    path = Path(boundary_cluster.stack.env["AUDIT_LOG_PATH"])
    assert secret not in (path.read_text() if path.exists() else "")
