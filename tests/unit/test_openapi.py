"""The OpenAPI document: valid, in step with the app's routes, served as dumped; /version, /docs and CORS."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from flask import Flask
from openapi_spec_validator import validate

from api import docs, openapi
from api.app import create_app
from core.errors import ConfigError
from core.settings import Settings

KEY = "k" * 32
ADMIN = "a" * 32
HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def make_app(redis_client: fakeredis.FakeRedis, **settings: Any) -> Flask:
    return create_app(Settings(**settings), client=redis_client)


@pytest.fixture
def app(redis_client: fakeredis.FakeRedis) -> Flask:
    return make_app(redis_client, penny_api_keys=((KEY, "acme"),), penny_admin_keys=(ADMIN,))


@pytest.fixture
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_served_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] == openapi.API_VERSION


def test_every_api_route_is_in_the_document_and_nothing_else(app: Flask, document: dict[str, Any]) -> None:
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(openapi.API_PREFIX + "/"):
            continue  # /health, /metrics, /docs and its files, static: the service's, not the API contract
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            served.add((openapi.openapi_path(rule), method.lower()))
    documented = {(path, method) for path, item in document["paths"].items() for method in item
                  if method in HTTP_METHODS}
    assert served == documented
    assert {"/api/v1/openapi.json", "/api/v1/version", "/api/v1/jobs/{job_id}/events"} <= set(document["paths"])
    assert not any(path.startswith(("/health", "/metrics", "/docs")) for path in document["paths"])


def test_a_route_without_a_description_stops_the_build(redis_client: fakeredis.FakeRedis) -> None:
    app = make_app(redis_client)
    app.add_url_rule("/api/v1/undescribed", "undescribed", lambda: "")
    with pytest.raises(LookupError, match="/api/v1/undescribed"):
        openapi.build_spec(app, Settings())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()
            if method in HTTP_METHODS]


def test_every_refusal_is_the_error_envelope_and_authenticated_routes_name_401(document: dict[str, Any]) -> None:
    for path, method, op in _operations(document):
        public = op.get("security") == []
        assert ("401" not in op["responses"]) is public, (path, method)
        for status, response in op["responses"].items():
            if int(status) >= 400:
                media = response["content"]["application/json"]
                assert media["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}, (path, method, status)
                assert media["examples"], (path, method, status)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= set(op["responses"]), (path, method)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["security"] == [{"bearerAuth": []}]


def test_rate_limited_routes_document_429_with_retry_after(document: dict[str, Any]) -> None:
    limited = {("/api/v1/execute", "post"), ("/api/v1/execute/stream", "post"), ("/api/v1/jobs", "post"),
               ("/api/v1/sessions", "post"), ("/api/v1/validate", "post"), ("/api/v1/packages/install", "post"),
               ("/api/v1/sessions/{session_id}/variables", "put")}
    for path, method, op in _operations(document):
        if (path, method) in limited:
            assert "Retry-After" in op["responses"]["429"]["headers"], (path, method)
    assert "429" not in document["paths"]["/api/v1/jobs/{job_id}"]["get"]["responses"]


def test_the_streams_name_their_events_and_each_payload_schema(document: dict[str, Any]) -> None:
    for path, method in (("/api/v1/execute/stream", "post"), ("/api/v1/jobs/{job_id}/events", "get")):
        media = document["paths"][path][method]["responses"]["200"]["content"]["text/event-stream"]
        events = media["x-sse-events"]
        assert set(events) == {"queued", "started", "stdout", "stderr", "plot", "display", "metrics", "result"}
        assert events["result"] == {"$ref": "#/components/schemas/ExecutionResult"}
    union = document["components"]["schemas"]["JobEvent"]["oneOf"]
    assert {variant["properties"]["event"]["const"] for variant in union} >= {"queued", "stdout", "result"}
    params = document["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["parameters"]
    assert {(p["name"], p["in"]) for p in params} == {("job_id", "path"), ("Last-Event-ID", "header"),
                                                       ("lastEventId", "query")}


def test_request_bodies_come_from_the_schemas_the_api_loads_with(redis_client: fakeredis.FakeRedis) -> None:
    app = make_app(redis_client, max_execution_time=7000)
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    execute = document["components"]["schemas"]["ExecuteRequest"]
    assert execute["required"] == ["code"] and execute["additionalProperties"] is False
    assert execute["properties"]["timeout"]["maximum"] == 7000  # MAX_EXECUTION_TIME, as the API checks it
    body = document["paths"]["/api/v1/execute"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ExecuteRequest"}
    assert body["content"]["application/json"]["example"]["code"]


def test_the_dump_command_writes_exactly_the_served_document(redis_client: fakeredis.FakeRedis, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_EXECUTION_TIME", "9000")
    settings = Settings.from_env()
    served = create_app(settings, client=redis_client).test_client().get("/api/v1/openapi.json").get_data()
    out = tmp_path / "openapi.json"
    assert openapi.main(["--out", str(out)], create=lambda s: create_app(s, client=redis_client)) == 0
    assert json.loads(out.read_text()) == json.loads(served)
    assert json.loads(out.read_text())["components"]["schemas"]["ExecuteRequest"]["properties"]["timeout"][
        "maximum"] == 9000


def test_the_document_and_the_version_need_no_key_but_the_rest_does(app: Flask) -> None:
    client = app.test_client()
    version = client.get("/api/v1/version")
    assert version.status_code == 200
    assert version.get_json() == {"version": importlib.metadata.version("penny-sandbox"),
                                  "apiVersion": openapi.API_VERSION}
    assert client.get("/api/v1/sessions").status_code == 401
    assert client.get("/api/v1/sessions", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_health_reports_the_versions(app: Flask) -> None:
    body = app.test_client().get("/health").get_json()
    assert body["version"] == importlib.metadata.version("penny-sandbox")
    assert body["apiVersion"] == openapi.API_VERSION


def test_the_docs_page_serves_swagger_ui_from_this_origin(app: Flask, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assets = tmp_path / "swagger-ui-dist"
    assets.mkdir()
    for name in docs.ASSET_FILES:
        (assets / name).write_text(f"/* {name} */")
    monkeypatch.setattr(docs, "ASSETS_DIR", assets)
    client = app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert 'src="/docs/swagger-ui-bundle.js"' in html and "http" not in html.replace("http-equiv", "")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert client.get("/docs/swagger-ui-bundle.js").get_data(as_text=True) == "/* swagger-ui-bundle.js */"
    assert "/api/v1/openapi.json" in client.get("/docs/init.js").get_data(as_text=True)
    assert client.get("/docs/package.json").status_code == 404  # only the page's files, nothing else of the folder


def test_without_the_built_assets_the_docs_page_says_how_to_build_them(app: Flask, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs, "ASSETS_DIR", tmp_path / "missing")
    page = app.test_client().get("/docs")
    assert page.status_code == 503
    assert "make docs-page" in page.get_data(as_text=True)
    assert app.test_client().get("/docs/swagger-ui-bundle.js").status_code == 404


PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}


def test_cors_is_off_by_default(app: Flask) -> None:
    response = app.test_client().options("/api/v1/execute", headers={"Origin": "https://app.example.com",
                                                                    **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in response.headers
    get = app.test_client().get("/api/v1/version", headers={"Origin": "https://app.example.com"})
    assert "Access-Control-Allow-Origin" not in get.headers


def test_cors_allows_the_listed_origins_with_the_authorization_header(redis_client: fakeredis.FakeRedis) -> None:
    app = make_app(redis_client, penny_api_keys=((KEY, "acme"),),
                   cors_origins=("https://app.example.com", "http://localhost:5173"))
    client = app.test_client()
    allowed = client.options("/api/v1/execute", headers={"Origin": "https://app.example.com", **PREFLIGHT})
    assert allowed.status_code == 200  # a preflight carries no key: never 401
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "authorization" in allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    other = client.options("/api/v1/execute", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Headers" not in other.headers
    refused = client.get("/api/v1/sessions", headers={"Origin": "http://localhost:5173"})
    assert refused.status_code == 401  # the page may read the refusal, not get past it
    assert refused.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]


def test_cors_origins_are_read_from_the_environment_and_checked() -> None:
    settings = Settings.from_env({"CORS_ORIGINS": "https://app.example.com/, http://localhost:5173"})
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173")
    assert Settings.from_env({}).cors_origins == ()
    for bad in ("*", "app.example.com", "https://app.example.com/path"):
        with pytest.raises(ConfigError, match="CORS_ORIGINS"):
            Settings.from_env({"CORS_ORIGINS": bad})
