"""The API describing itself: GET /api/v1/openapi.json, GET /api/v1/version, and the /docs page.

/docs is Swagger UI (the swagger-ui-dist npm package, installed by `make docs-page` into docs/api-page/) served
by the API itself, offline: the page, its script and its styles all come from this origin. Without the
installed package /docs answers a page saying how to build it (503), never a 500.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, send_from_directory
from werkzeug.exceptions import NotFound

from api.apidoc import Reply, documented
from api.context import services
from api.openapi import API_VERSION, build_spec, package_version
from api.schemas import VersionSchema

PAGE_DIR = Path(__file__).resolve().parent.parent / "docs" / "api-page"
# The page's own files (committed) and Swagger UI's (installed by npm ci).
PAGE_FILES = {"index.html", "init.js"}
ASSETS_DIR = PAGE_DIR / "node_modules" / "swagger-ui-dist"
ASSET_FILES = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}
# Swagger UI sets style attributes and uses data: images; its script and styles are this origin's files only.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PENNY Sandbox API: docs page not built</title></head>
<body><h1>The docs page is not built</h1>
<p>Its Swagger UI files are installed from the npm registry by <code>make docs-page</code>
(<code>npm ci</code> in <code>docs/api-page/</code>); <code>make run</code> and <code>make test</code> do it too.</p>
<p>The API's description itself is served at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
</body></html>
"""

api_bp = Blueprint("meta", __name__, url_prefix="/api/v1")
page_bp = Blueprint("docs", __name__)


def document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, built once per process (the routes and settings do not change)."""
    cached = app.extensions.get("penny.openapi")
    if cached is None:
        cached = app.extensions["penny.openapi"] = build_spec(app, services().settings)
    return cached


@api_bp.get("/openapi.json")
@documented(tag="meta", public=True, ok=Reply(200, "this document (OpenAPI 3.1)"))
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API (public: no key needed)."""
    return jsonify(document(current_app))


@api_bp.get("/version")
@documented(tag="meta", public=True, ok=Reply(200, "the versions", VersionSchema,
                                               example={"version": "0.1.0", "apiVersion": API_VERSION}))
def version() -> Response:
    """The service's package version and the API's version (public: no key needed)."""
    return jsonify({"version": package_version(), "apiVersion": API_VERSION})


def assets_installed() -> bool:
    """Whether `make docs-page` has installed Swagger UI's files."""
    return all((ASSETS_DIR / name).is_file() for name in ASSET_FILES)


@page_bp.get("/docs")
def page() -> Response:
    """The human page: Swagger UI on /api/v1/openapi.json, or how to build it."""
    if not assets_installed():
        return Response(_MISSING, status=503, mimetype="text/html", headers={"Content-Security-Policy": PAGE_CSP})
    return _send(PAGE_DIR, "index.html")


@page_bp.get("/docs/<name>")
def asset(name: str) -> Response:
    """The page's own files and Swagger UI's (only the few it loads)."""
    if name in PAGE_FILES:
        return _send(PAGE_DIR, name)
    if name in ASSET_FILES and assets_installed():
        return _send(ASSETS_DIR, name)
    raise NotFound(f"no docs asset {name}")


def _send(directory: Path, name: str) -> Response:
    response = send_from_directory(directory, name, max_age=300)
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response
