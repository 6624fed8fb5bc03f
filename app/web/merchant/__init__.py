"""The merchant app at /app: one set of pages behind two doors (inside Shopify admin, and standalone).

- `context.py`: who is asking and which store they see (`merchant_required`, `current_store()`).
- `accounts.py` + `signin.py`: standalone accounts (argon2 passwords, server sessions, reset and claim links,
  DB-backed sign-in limits); `mail.py`: emails to the merchant through the email channel.
- `nav.py`: the pages in the navigation, in one list; `reasons.py`: reason codes in words, for every page.
- One module per page (or group of pages); templates under `app/web/templates/merchant/`, each extending
  `merchant/base.html` (blocks `title` and `content`).

CSRF: every POST to /app carries Flask-WTF's token, except requests authenticated by a bearer token (the
Shopify session token from App Bridge, or the operator's): a browser never attaches those by itself, so
another site cannot forge them. Other blueprints (webhooks, /track, providers, /u/) are not checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, g, request
from flask.blueprints import BlueprintSetupState
from flask_wtf.csrf import CSRFProtect

bp = Blueprint("merchant", __name__, url_prefix="/app", static_folder="static", static_url_path="/static")
csrf = CSRFProtect()

from app.web.merchant import home, setup, flow, copy, status, signin  # noqa: E402,F401  (register their routes on bp)
from app.web.merchant import billing  # noqa: E402,F401  (the plan picker, recovery/billing)
from app.web.merchant import carts, performance  # noqa: E402,F401  (insights: Performance, Carts)
from app.web.merchant import store_page  # noqa: E402,F401  (Settings: the settings not on Flow or Setup)


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    app.config.update(
        WTF_CSRF_CHECK_DEFAULT=False,  # only the merchant app's forms are checked (see _csrf)
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
    )
    csrf.init_app(app)


@bp.before_request
def _csrf() -> None:
    auth = request.authorization
    if request.method == "POST" and not (auth is not None and auth.type == "bearer"):
        csrf.protect()


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time in the store's own time zone, with the zone's abbreviation."""
    if value is None:
        return "—"
    store = g.get("store")
    zone = ZoneInfo((store.timezone if store is not None else None) or "UTC")
    return value.astimezone(zone).strftime(fmt + " %Z")


@bp.app_template_filter("reason")
def _reason(code: str | None) -> str:
    from app.web.merchant.reasons import words

    return words(code)


@bp.context_processor
def _layout() -> dict[str, Any]:
    """What base.html needs on every merchant page: the menu, the doors, the store switcher."""
    from app.web import runtime
    from app.web.merchant.nav import NAV

    store = g.get("store")
    return {
        "nav": [item for item in NAV if item[0] != "merchant.billing" or billing.visible()],  # billing off: hidden
        "store_param": store.domain if store is not None and g.get("operator") else None,
        "embedded": bool(g.get("embedded")), "shopify_api_key": runtime().settings.shopify_api_key,
        "account": g.get("account"), "stores": g.get("stores") or [], "current": store, "local_time": local_time,
    }
