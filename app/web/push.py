"""Web push on the storefront: the VAPID public key, the service worker script, subscription capture.

- `GET /push/key`: the applicationServerKey for `pushManager.subscribe` (404 while push is not configured);
  `GET /proxy/push/key` is the same through the app proxy (`/apps/cartresq/push/key`).
- `GET /push/sw.js`: the service worker. A service worker must come from the page's own origin, so the
  storefront cannot register it from here: WooCommerce's plugin serves this script at its site root, and
  on Shopify it is reached through the app proxy as `/apps/cartresq/sw.js` (`GET /proxy/sw.js`).
- `POST /push/subscribe` (CORS, the same origin rule as POST /track) and `POST /proxy/push/subscribe`
  (through the app proxy: same-origin for the shopper, the shop taken from Shopify's signed parameters).
"""

from __future__ import annotations

import base64
import logging
from functools import lru_cache
from importlib import resources
from typing import Any

from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate
from py_vapid import Vapid
from shopify_app import verify_app_proxy_req
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from connectors.shopify.webhooks import SHOP_DOMAIN
from recovery.intake import subscriptions as push
from recovery.storage import tables as t
from recovery.sending.channels.webpush import local_endpoint
from recovery.sending.netguard import push_endpoint_allowed

# The origin rule of POST /track, reused rather than restated (app/web/track.py applies the same functions).
from recovery.intake.origins import allowed_origins, find_store, normalize_origin, origin_known

log = logging.getLogger(__name__)

bp = Blueprint("push", __name__)

MAX_BODY = 8192  # a PushSubscription JSON is well under 1 KB


def _runtime():  # type: ignore[no-untyped-def]
    from app.web import runtime

    return runtime()


def _error(status: int, reason: str) -> tuple[Response, int]:
    response = jsonify(error=reason)
    response.headers["Cache-Control"] = "no-store"
    return response, status


def _cors(response: Response, origin: str) -> Response:
    response.headers["Access-Control-Allow-Origin"] = origin  # echoed, never "*"
    response.headers["Vary"] = "Origin"
    return response


# --- the key and the script ---------------------------------------------------------------------------


@lru_cache(maxsize=4)
def public_key(private_key: str) -> str:
    """The uncompressed P-256 point of our VAPID key, base64url without padding (what browsers expect)."""
    point = Vapid.from_string(private_key=private_key).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def _key_response() -> Response | tuple[Response, int]:
    settings = _runtime().settings
    if not (settings.vapid_private_key and settings.vapid_subject):
        return _error(404, "web push is not configured")
    try:
        key = public_key(settings.vapid_private_key)
    except (ValueError, TypeError):
        log.error("VAPID_PRIVATE_KEY is unusable; web push is off")
        return _error(404, "web push is not configured")
    response = jsonify(publicKey=key)
    # A public key, fetched by storefront scripts of any shop: no credentials, so "*" is safe here.
    response.headers.update({"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"})
    return response


@bp.get("/push/key")
def vapid_key() -> Response | tuple[Response, int]:
    return _key_response()


@lru_cache(maxsize=1)
def _script() -> bytes:
    return resources.files("app.web").joinpath("push_sw.js").read_bytes()


def _sw_response() -> Response:
    # Browsers accept a service worker only with a JavaScript MIME type; no-cache lets an update reach them.
    return Response(_script(), mimetype="text/javascript", headers={"Cache-Control": "no-cache"})


@bp.get("/push/sw.js")
def service_worker() -> Response:
    return _sw_response()


# --- Shopify app proxy ----------------------------------------------------------------------------------


def _proxied_shop() -> str | None:
    """The shop of a request Shopify signed for our app proxy (hex HMAC-SHA256 of the sorted query
    parameters, no separators, fresh within 90 s; `shopifyapp` checks it), else None."""
    settings = _runtime().settings
    if not settings.shopify_api_secret:
        return None
    config = {"client_id": settings.shopify_api_key or "proxy", "client_secret": settings.shopify_api_secret}
    if settings.shopify_api_secret_old:
        config["old_client_secret"] = settings.shopify_api_secret_old
    checked = verify_app_proxy_req(
        {"method": request.method, "headers": dict(request.headers), "url": request.url, "body": ""},
        config,  # type: ignore[arg-type]
    )
    shop = request.args.get("shop", "")
    return shop.lower() if checked.ok and SHOP_DOMAIN.match(shop) else None


@bp.get("/proxy/sw.js")
def proxied_service_worker() -> Response | tuple[Response, int]:
    if _proxied_shop() is None:
        return _error(401, "invalid or missing app proxy signature")
    return _sw_response()


@bp.get("/proxy/push/key")
def proxied_vapid_key() -> Response | tuple[Response, int]:
    """`/apps/cartresq/push/key`: the popup asks its own origin, as for the worker and the subscription."""
    if _proxied_shop() is None:
        return _error(401, "invalid or missing app proxy signature")
    return _key_response()


# --- subscriptions --------------------------------------------------------------------------------------


class _Keys(Schema):
    p256dh = fields.String(required=True, validate=validate.Length(min=40, max=200))
    auth = fields.String(required=True, validate=validate.Length(min=16, max=64))


class _Subscription(Schema):
    endpoint = fields.Url(
        required=True, schemes={"https"}, require_tld=True, validate=validate.Length(max=2048)
    )
    keys = fields.Nested(_Keys, required=True)
    expirationTime = fields.Raw(load_default=None, allow_none=True)  # noqa: N815 (the browser's name)


class SubscribeRequest(Schema):
    shop = fields.String(required=True, validate=validate.Length(min=3, max=255))
    sid = fields.String(load_default=None, validate=validate.Length(max=64))
    cart_token = fields.String(load_default=None, validate=validate.Length(max=255))
    subscription = fields.Nested(_Subscription, required=True)


def _read(shop: str | None = None) -> dict[str, Any] | tuple[Response, int]:
    if (request.content_length or 0) > MAX_BODY:
        return _error(413, f"a subscription is at most {MAX_BODY} bytes")
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    if shop is not None:  # verified by the app proxy signature: whatever the body says is ignored
        body = {**body, "shop": shop}
    try:
        doc: dict[str, Any] = SubscribeRequest().load(body)
    except ValidationError as exc:
        return _error(400, "; ".join(f"{k}: {v}" for k, v in sorted(exc.normalized_messages().items())))
    return doc


def _store(
    doc: dict[str, Any], origin: str | None, proxied: bool
) -> tuple[int, int | None] | tuple[Response, int]:
    """Save the subscription; (status, _) on success, an error response otherwise. Caller's transaction."""
    from app.web.track import new_row_refused

    rt = _runtime()
    endpoint = doc["subscription"]["endpoint"]
    if not push_endpoint_allowed(endpoint) and not (rt.settings.allow_private_hosts and local_endpoint(endpoint)):
        return _error(400, "subscription.endpoint: not a known push service")
    try:
        with rt.sessions.begin() as session:
            store = find_store(session, doc["shop"])
            if store is None or not store.active:
                return _error(404, "unknown shop")
            if not proxied and (origin is None or origin not in allowed_origins(store)):
                return _error(403, "origin not allowed for this shop")
            if refused := new_row_refused("push-subscription"):  # counted only after the checks above
                return refused
            cart_id = None
            if doc["cart_token"]:
                token = doc["cart_token"].split("?", 1)[0]  # Shopify's /cart.js token may carry "?key=…"
                cart_id = session.scalars(
                    select(t.Cart.id).where(t.Cart.store_id == store.id, t.Cart.cart_token == token)
                ).first()
            sub = doc["subscription"]
            push.save_subscription(
                session, store.id, sub["endpoint"], sub["keys"], sid=doc["sid"], cart_id=cart_id
            )
    except IntegrityError:  # the same endpoint saved concurrently: the other request stored it
        return 200, None
    return 201, cart_id


@bp.route("/push/subscribe", methods=["POST", "OPTIONS"])
def push_subscribe() -> Response | tuple[Response, int]:
    origin = normalize_origin(request.headers.get("Origin"))
    if request.method == "OPTIONS":  # application/json preflights; the shop is not known yet
        if origin is None:
            return _error(403, "Origin header required")
        with _runtime().sessions() as session:
            if not origin_known(session, origin):
                return _error(403, "origin not allowed")
        response = Response(status=204)
        response.headers.update(
            {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "7200",
            }
        )
        return _cors(response, origin)
    doc = _read()
    if isinstance(doc, tuple):
        return doc
    result = _store(doc, origin, proxied=False)
    if isinstance(result[0], Response):
        return result  # type: ignore[return-value]
    return _cors(jsonify(status="subscribed"), origin or ""), int(result[0])  # type: ignore[return-value]


@bp.post("/proxy/push/subscribe")
def proxied_push_subscribe() -> tuple[Response, int]:
    """Through the app proxy: the verified shop replaces whatever the body names."""
    shop = _proxied_shop()
    if shop is None:
        return _error(401, "invalid or missing app proxy signature")
    doc = _read(shop)
    if isinstance(doc, tuple):
        return doc
    result = _store(doc, None, proxied=True)
    if isinstance(result[0], Response):
        return result  # type: ignore[return-value]
    return jsonify(status="subscribed"), int(result[0])  # type: ignore[arg-type]
