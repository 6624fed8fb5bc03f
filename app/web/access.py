"""Who may see store data, in one place for every page that shows it (the dashboard, /metrics).

- The operator: `CARTRESQ_ADMIN_TOKEN`, as `Authorization: Bearer <token>` or basic auth with the token as
  the password (any user name). Sees every store.
- Inside Shopify admin (Shopify keys configured): a valid session token; sees its own shop only.
- Anyone else: 401. A deployment without Shopify keys has no other way in.

`require_store_access` guards a view; in it, `store_scope()` is the scope every query must apply.
`check_exposure` refuses to serve on a non-loopback address without the token (`cartresq serve`, gunicorn).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Response, g, request
from sqlalchemy import Select, false, select

from recovery.storage import tables as t
from recovery.config.settings import Settings

CHALLENGE = 'Basic realm="CartResQ", charset="UTF-8"'


def presented_token() -> str | None:
    """The operator token the request carries (bearer, or basic auth's password), else None."""
    auth = request.authorization
    if auth is None:
        return None
    if auth.type == "bearer":
        return auth.token
    if auth.type == "basic":
        return auth.password
    return None


def is_operator(settings: Settings) -> bool:
    expected, given = settings.admin_token, presented_token()
    return bool(expected and given) and hmac.compare_digest(str(given).encode(), str(expected).encode())


def unauthorized(detail: str = "this page needs the operator token (CARTRESQ_ADMIN_TOKEN)") -> Response:
    return Response(detail + "\n", 401, {"WWW-Authenticate": CHALLENGE, "Cache-Control": "no-store"},
                    mimetype="text/plain")


def require_store_access(view: Callable[..., Any]) -> Callable[..., Any]:
    """Only the operator or a verified Shopify session reaches `view`; `g.shop` is the session's shop
    (None for the operator) and `store_scope()` the stores the caller may see."""
    from app.web.auth import require_session

    in_shopify_admin = require_session(view)

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from app.web import runtime

        rt = runtime()
        g.operator, g.shop, g.store_status = False, None, None
        if is_operator(rt.settings):
            g.operator = True
            return view(*args, **kwargs)
        if rt.shopify is None:  # no merchant sign-in in this deployment: the operator token or nothing
            return unauthorized()
        return in_shopify_admin(*args, **kwargs)  # sets g.shop, or answers 401 / the token bounce page

    return wrapper


def store_scope() -> Select[tuple[int]]:
    """The ids of the stores the caller may see: every store for the operator, the session's shop only
    inside Shopify admin, a merchant account's linked stores, none otherwise (fails closed). Use as `Model.store_id.in_(store_scope())`."""
    query = select(t.Store.id)
    if g.get("operator"):
        return query
    if g.get("account") is not None:  # a standalone merchant account (app/web/merchant): its linked stores
        from app.web.merchant.accounts import store_ids

        return store_ids(g.account.id)
    if g.get("shop"):
        return query.where(t.Store.platform == "shopify", t.Store.domain == g.shop)
    return query.where(false())


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: The operator token's least length where the server is reachable from other machines.
MIN_TOKEN = 24


def check_exposure(settings: Settings, hosts: Iterable[str]) -> None:
    """Refuse (SystemExit) to serve store data on a non-loopback address without the operator token,
    when no Shopify keys give merchants their own sign-in; and with a token too short to withstand guessing
    (nothing slows guesses at `/operator` or the bearer check: the token's length is the defence)."""
    exposed = sorted(h for h in hosts if not is_loopback(h))
    if exposed and settings.admin_token and len(settings.admin_token) < MIN_TOKEN:
        raise SystemExit(f"refusing to serve on {', '.join(exposed)} with a CARTRESQ_ADMIN_TOKEN of fewer than {MIN_TOKEN} "
                         "characters: use a random one, e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    if settings.admin_token or (settings.shopify_api_key and settings.shopify_api_secret):
        return
    if exposed:
        raise SystemExit(
            f"refusing to serve on {', '.join(exposed)} without CARTRESQ_ADMIN_TOKEN: without Shopify keys the "
            "dashboard's only protection is the operator token (set it, or bind 127.0.0.1)"
        )


def with_local_token(settings: Settings) -> tuple[Settings, str | None]:
    """For `serve`/`demo` on loopback without a token: a fresh one for this process (printed to the
    operator's terminal, never logged); None when one is set or Shopify sign-in applies."""
    import dataclasses

    if settings.admin_token or (settings.shopify_api_key and settings.shopify_api_secret):
        return settings, None
    token = secrets.token_urlsafe(24)
    return dataclasses.replace(settings, admin_token=token), token


def with_served_url(
    settings: Settings, host: str, port: int, environ: Mapping[str, str] | None = None
) -> Settings:
    """For `serve`: without an explicit APP_URL, links (password reset, /r/, /u/, /o/) point at the address
    this process listens on, not at the default port 8000. A wildcard bind is reached on loopback."""
    import dataclasses

    if ((os.environ if environ is None else environ).get("APP_URL") or "").strip():
        return settings
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104  (a wildcard bind)
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return dataclasses.replace(settings, app_url=f"http://{shown}:{port}")


def gunicorn_hosts() -> list[str] | None:
    """The hosts gunicorn binds when it is the one calling the app factory (its config is on the stack:
    the worker or the preloading application); None when not under gunicorn."""
    if "gunicorn" not in sys.modules:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        cfg = getattr(frame.f_locals.get("self"), "cfg", None)
        address = getattr(cfg, "address", None)
        if address is not None:
            return [a[0] if isinstance(a, tuple) else "localhost" for a in address]  # a str: a unix socket
        frame = frame.f_back  # type: ignore[assignment]
    return None
