"""Access logs that name the route, never a secret in the URL: link tokens (/r/ /u/ /o/), the WooCommerce
webhook's store key, and every query string (Shopify's `id_token`, `hmac`, `code`, `state`...).

`cartresq serve` and the demo use `RedactingHandler` (werkzeug); under gunicorn pass
`--logger-class app.logs.GunicornLogger` when the access log is on."""

from __future__ import annotations

import re
from typing import Any

from werkzeug.serving import WSGIRequestHandler

_SECRET_HEADERS = frozenset(("{referer}i", "{authorization}i", "{cookie}i", "{x-shopify-hmac-sha256}i"))
_SECRET_SEGMENT = re.compile(r"^/(r|u|o|webhooks/woocommerce)/[^/]+")


def loggable(target: str) -> str:
    """`/u/eyJhbGc...?x=1` → `/u/<token>?…`: the route without its secrets."""
    path, query = target.split("?", 1) if "?" in target else (target, None)
    path = _SECRET_SEGMENT.sub(lambda m: f"/{m.group(1)}/<token>", path)
    return path + ("?…" if query is not None else "")


class RedactingHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.path = loggable(self.path)  # the request is answered: the path is only logged from here on
        self.requestline = f"{self.command} {self.path} {self.request_version}"
        super().log_request(code, size)


def _gunicorn_logger() -> type:
    from gunicorn.glogging import Logger

    class GunicornLogger(Logger):  # type: ignore[misc]
        def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
            atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
            target = loggable(environ.get("RAW_URI") or environ.get("PATH_INFO") or "")
            atoms.update(r=f"{environ.get('REQUEST_METHOD')} {target} {environ.get('SERVER_PROTOCOL')}",
                         U=target.split("?", 1)[0], q="", f="-")  # f: the Referer may hold a token too
            for key in [k for k in atoms if k.endswith("}e") or k in _SECRET_HEADERS]:
                atoms[key] = "-"  # environ atoms repeat the raw URI; these headers carry credentials
            return atoms

    return GunicornLogger


def __getattr__(name: str) -> Any:  # `app.logs.GunicornLogger`, importing gunicorn only when asked for
    if name == "GunicornLogger":
        return _gunicorn_logger()
    raise AttributeError(name)
