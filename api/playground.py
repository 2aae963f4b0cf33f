"""The web playground at `/`: the files `make run` builds into web/dist, served with a page's own CSP.

The page, its scripts and Monaco's editor worker come from this origin only ('self', no CDN, works offline).
Monaco and plotly.js set element styles and inject <style> elements at run time, so styles allow
'unsafe-inline'; scripts never do. Images: the plots are data: URLs. Nothing here needs an API key (the files
hold no data); the page sends the key the user types to /api/v1 as a bearer token.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory
from werkzeug.exceptions import NotFound

DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
PAGE_CSP = ("default-src 'none'; script-src 'self'; worker-src 'self'; connect-src 'self'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# Built asset names carry a content hash: cached for a year. index.html is revalidated every time.
ASSET_MAX_AGE_S = 365 * 24 * 3600
NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PENNY Sandbox: playground not built</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto; line-height: 1.5">
<h1>The playground is not built</h1>
<p>The API is running (<a href="/health">/health</a>, <code>/api/v1/...</code>), but <code>web/dist</code>
is missing. <code>make run</code> builds it; or build it by hand:</p>
<pre>make web</pre>
<p>then reload this page.</p>
</body></html>
"""

bp = Blueprint("playground", __name__)


def _with_csp(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


@bp.get("/")
def index() -> Response:
    """The playground page, or a page that says how to build it (503)."""
    dist = Path(current_app.config.get("PENNY_WEB_DIST", DIST))
    if not (dist / "index.html").is_file():
        return _with_csp(Response(NOT_BUILT, status=503, mimetype="text/html"))
    response = send_from_directory(dist, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return _with_csp(response)


@bp.get("/assets/<path:name>")
def asset(name: str) -> Response:
    """A built file (script, style, worker, font) by its hashed name; 404 outside web/dist/assets."""
    dist = Path(current_app.config.get("PENNY_WEB_DIST", DIST))
    if not (dist / "assets").is_dir():
        raise NotFound("the playground is not built")
    return _with_csp(send_from_directory(dist / "assets", name, max_age=ASSET_MAX_AGE_S))
