"""`GET /static/cartresq-tracker.js` and `/static/cartresq-popup.js` (the exit popup the tracker loads from
its `data-popup-src`): the storefront scripts, served to WooCommerce stores by the app.

Shopify serves the same file from the theme app extension's CDN; the WordPress plugin enqueues it from
`<APP_URL>/static/cartresq-tracker.js`. The plugin's `?ver=` is the plugin's version, not the script's,
so the URL does not change when the script does: a week of caching (then revalidation by a content
ETag, answered 304 when unchanged) rather than a year-long immutable lifetime that would pin an old
tracker in shoppers' browsers.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from flask import Blueprint, Response, jsonify, request

bp = Blueprint("assets", __name__)

ASSETS = Path(__file__).resolve().parents[2] / "theme_extension" / "assets"
TRACKER = ASSETS / "cartresq-tracker.js"
POPUP = ASSETS / "cartresq-popup.js"
MAX_AGE = 7 * 86400
CONTENT_TYPE = "text/javascript; charset=utf-8"  # RFC 9239

_cache: dict[str, tuple[tuple[int, int], bytes, str]] = {}
_lock = threading.Lock()


def _load(path: Path) -> tuple[bytes, str]:
    """The file and its content hash, re-read only when its size or mtime changes (deploys, development)."""
    stat = path.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _cache.get(str(path))
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
    body = path.read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:32]  # the same on every web process and machine
    with _lock:
        _cache[str(path)] = (key, body, etag)
    return body, etag


@bp.get("/static/cartresq-tracker.js")
def tracker() -> Response | tuple[Response, int]:
    return _serve(TRACKER)


@bp.get("/static/cartresq-popup.js")
def popup() -> Response | tuple[Response, int]:
    return _serve(POPUP)


def _serve(path: Path) -> Response | tuple[Response, int]:
    try:
        body, etag = _load(path)
    except OSError:
        return jsonify(error="Not Found", detail="the script is not installed"), 404
    response = Response(body, content_type=CONTENT_TYPE)
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Any storefront may load it (a script tag needs no CORS; this lets fetch-based preloaders read it too).
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)
