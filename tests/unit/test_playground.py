"""The playground's files at `/`: served from web/dist with the page's CSP, public, and a clear page when the
build is missing; the API's own routes keep their JSON-only policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest

from api.app import DATA_CSP
from api.playground import PAGE_CSP
from core.registry import WorkerRegistry
from tests.unit.test_api import make_client


@pytest.fixture
def client(tmp_path: Path) -> Any:
    redis_client = fakeredis.FakeRedis()
    WorkerRegistry(redis_client, ttl_s=60).beat("fake", {"name": "fake", "pool": {"idle": 1}})
    test_client = make_client(redis_client, penny_api_keys=(("secret-key-1", "acme"),))[0]
    test_client.application.config["PENNY_WEB_DIST"] = str(tmp_path / "dist")
    return test_client


def build(dist: Path) -> None:
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><div id="root"></div><script type="module" src="/assets/app-1.js">'
                                     "</script>")
    (dist / "assets" / "app-1.js").write_text("console.log('hi')")


def test_not_built_says_how_to_build_it(client: Any) -> None:
    response = client.get("/")
    assert response.status_code == 503
    assert "make web" in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"] == PAGE_CSP
    assert client.get("/assets/app-1.js").status_code == 404


def test_the_built_page_and_its_assets_need_no_key(client: Any, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert page.headers["Cache-Control"] == "no-cache"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    asset = client.get("/assets/app-1.js")
    assert asset.status_code == 200 and asset.mimetype == "text/javascript"
    assert "max-age=31536000" in asset.headers["Cache-Control"]
    assert asset.headers["Content-Security-Policy"] == PAGE_CSP


def test_nothing_outside_the_assets_is_served(client: Any, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    (tmp_path / "secret.txt").write_text("no")
    for path in ("/assets/../index.html", "/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt",
                 "/index.html", "/secret.txt"):
        response = client.get(path)
        assert response.status_code in (401, 404), path  # 401: an unknown path outside the playground needs a key
        assert b"root" not in response.data and response.data != b"no"


def test_the_page_policy_runs_no_inline_or_foreign_script(client: Any) -> None:
    directives = dict(part.strip().split(" ", 1) for part in PAGE_CSP.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in PAGE_CSP


def test_the_api_keeps_its_key_and_json_policy(client: Any, tmp_path: Path) -> None:
    build(tmp_path / "dist")
    response = client.post("/api/v1/execute", json={"code": "print(1)"})
    assert response.status_code == 401
    assert response.headers["Content-Security-Policy"] == DATA_CSP
    ok = client.post("/api/v1/execute", json={"code": "print(1)"}, headers={"Authorization": "Bearer secret-key-1"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
    assert ok.headers["Content-Security-Policy"] == DATA_CSP
