"""Shopify install and the embedded app's entry.

- Embedded (managed install): every dashboard request carries a session token (Bearer header, or
  `id_token` on the first document load); the first one of a shop without a usable token is exchanged
  for an expiring offline token. That same path re-authorizes a store whose refresh failed.
- Authorization-code grant (non-embedded): `/auth/shopify` → Shopify's authorize page with a
  single-use state → `/auth/shopify/callback`. Every failure is a 4xx naming the reason; no store is
  written unless the token exchange succeeded.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, g, jsonify, make_response, redirect, request
from sqlalchemy import select

from connectors.shopify import auth, tokens
from connectors.shopify.webhooks import SHOP_DOMAIN
from recovery.storage import tables as t

log = logging.getLogger(__name__)
bp = Blueprint("shopify_auth", __name__)

PATCH_ID_TOKEN_PATH = "/auth/shopify/patch-id-token"


def _services() -> Any:
    from app.web import runtime

    return runtime().shopify


def _fail(status: int, detail: str) -> tuple[Response, int]:
    return jsonify(error="Shopify authorization failed", detail=detail), status


@bp.get("/auth/shopify")
def install() -> Any:
    shopify = _services()
    if shopify is None:
        return _fail(404, "Shopify is not configured (SHOPIFY_API_KEY / SHOPIFY_API_SECRET)")
    params = request.args.to_dict()
    shop = params.get("shop", "").strip().lower()
    if not SHOP_DOMAIN.match(shop):
        return _fail(400, "shop must be a NAME.myshopify.com domain")
    if "hmac" in params:  # Shopify's own install request is signed; check it before anything else
        reason = auth.check_callback_query(shopify.config, params)
        if reason:
            return _fail(401 if "hmac" in reason else 400, reason)
    from app.web.track import new_row_refused

    if refused := new_row_refused("oauth-state"):  # each start stores a row: bounded per address
        return refused
    with shopify.sessions.begin() as session:
        state = tokens.new_state(session, shop)
    return redirect(auth.authorize_url(shopify.config, shop, state), code=302)


@bp.get("/auth/shopify/callback")
def callback() -> Any:
    shopify = _services()
    if shopify is None:
        return _fail(404, "Shopify is not configured (SHOPIFY_API_KEY / SHOPIFY_API_SECRET)")
    if request.path != urlparse(shopify.config.redirect_uri).path:
        return _fail(400, "callback reached at an unexpected redirect URI")
    params = request.args.to_dict()
    for required in ("code", "shop", "state", "timestamp", "hmac"):
        if not params.get(required):
            return _fail(400, f"missing {required}")
    reason = auth.check_callback_query(shopify.config, params)
    if reason:
        return _fail(401 if "hmac" in reason else 400, reason)
    shop = params["shop"].lower()
    with shopify.sessions.begin() as session:
        state_ok = tokens.consume_state(session, params["state"], shop)
    if not state_ok:
        return _fail(403, "state is unknown, expired, already used or issued for another shop")
    try:
        issued = auth.exchange_code(shopify.config, shop, params["code"])
    except auth.TokenError as exc:
        log.warning("code exchange for %s failed: %s", shop, exc.code)
        return _fail(400, f"the authorization code was refused ({exc.code})")
    with shopify.sessions.begin() as session:
        store_id = tokens.save_tokens(session, shopify.vault, shop, issued).id
    log.info("installed by authorization code: %s", shop)
    shopify.sync_origins(store_id)  # the storefront's own domains may send tracker beacons
    return redirect(f"https://{shop}/admin/apps/{shopify.config.api_key}", code=302)


@bp.get(PATCH_ID_TOKEN_PATH)
def patch_id_token() -> Any:
    """The bounce page App Bridge uses to hand a fresh session token to a document request."""
    shopify = _services()
    if shopify is None:
        return _fail(404, "Shopify is not configured")
    request_input = {"method": "GET", "headers": dict(request.headers), "url": request.url, "body": ""}
    result = shopify.config.app().app_home_patch_id_token(request_input)
    g.frame_admin = True  # framed by Shopify's admin only: its `shop` parameter is unchecked (app/web/headers.py)
    return Response(result.response.body, status=result.response.status, headers=dict(result.response.headers))


def require_session(view: Callable[..., Any]) -> Callable[..., Any]:
    """With Shopify configured, only a request carrying a valid session token reaches the view;
    `g.shop` and `g.store_status` say whose dashboard it is and whether it needs re-authorization."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        shopify = _services()
        g.shop, g.store_status = None, None
        if shopify is None:
            return view(*args, **kwargs)
        check = auth.verify_session(shopify.config, request.url, dict(request.headers), PATCH_ID_TOKEN_PATH)
        if not check.ok:
            return Response(f"session token rejected: {check.reason}", status=check.status, headers=dict(check.headers))
        g.shop = g.frame_shop = check.shop  # the verified shop: the only one whose admin may frame the page
        g.store_status = _ensure_token(shopify, check)
        response = make_response(view(*args, **kwargs))
        response.headers.update(dict(check.headers))  # CSP frame-ancestors for the shop and the admin
        return response

    return wrapper


def _ensure_token(shopify: Any, check: auth.SessionCheck) -> dict[str, Any]:
    """First contact (or a store needing re-authorization): exchange the session token now."""
    with shopify.sessions() as session:
        store = session.scalar(select(t.Store).where(t.Store.platform == "shopify", t.Store.domain == check.shop))
        usable = store is not None and tokens.has_usable_token(store)
    if not usable:
        try:
            issued = auth.exchange_session_token(shopify.config, check.id_token)
        except auth.TokenError as exc:
            log.warning("token exchange for %s failed: %s", check.shop, exc.code)
        else:
            with shopify.sessions.begin() as session:
                store_id = tokens.save_tokens(session, shopify.vault, str(check.shop), issued).id
            log.info("token exchange done for %s", check.shop)
            shopify.sync_origins(store_id)  # the storefront's own domains may send tracker beacons
    with shopify.sessions() as session:
        store = session.scalar(select(t.Store).where(t.Store.platform == "shopify", t.Store.domain == check.shop))
        return {
            "shop": check.shop,
            "needs_reauth": store is None or not tokens.has_usable_token(store),
            "reason": (store.reauth_reason if store else None) or ("not installed" if store is None else None),
            "issue": store.platform_issue if store else None,
        }
