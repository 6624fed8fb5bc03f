"""Signed restore links for the WordPress plugin: `<store>/?cartresq_restore=<token>`.

The token carries the cart (product, variation, quantity), its coupons, the billing email and an expiry; the plugin
checks the HMAC with the secret we handed it at activation (PHP: hash_hmac + hash_equals), rebuilds
the cart and lands the shopper on checkout. Single purpose: it restores a cart and logs nobody in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

#: As long as our own restore links work (recovery.messages.links MAX_AGE["restore"]).
TTL_SECONDS = 30 * 86400
PARAM = "cartresq_restore"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(secret: str, order: Mapping[str, Any], now: datetime, ttl: int = TTL_SECONDS) -> str:
    items = [
        [int(i.get("product_id") or 0), int(i.get("variation_id") or 0), int(i.get("quantity") or 0)]
        for i in order.get("line_items") or []
        if isinstance(i, Mapping) and int(i.get("quantity") or 0) > 0
    ][:50]
    coupons = [
        str(c["code"])[:64]
        for c in order.get("coupon_lines") or []
        if isinstance(c, Mapping) and c.get("code")
    ]
    body: dict[str, Any] = {
        "v": 1,
        "o": int(order.get("id") or 0),
        "i": items,
        "c": coupons[:5],
        "e": int(now.timestamp()) + ttl,
    }
    billing = order.get("billing")
    email = billing.get("email") if isinstance(billing, Mapping) else None
    if isinstance(email, str) and 3 <= len(email.strip()) <= 254 and "@" in email:
        # The plugin sets it as the cart's billing email before applying the offer code: WooCommerce
        # checks a coupon's email restriction against that (or the logged-in user's), and a guest opening
        # the link in a new browser has neither. Signed, so a link cannot be made for another address.
        body["m"] = email.strip().lower()
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{_b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())}"


def read_token(secret: str, token: str, now: datetime) -> dict[str, Any]:
    """The Python twin of the plugin's check (used by tests); raises ValueError when invalid or expired."""
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected, signature):
        raise ValueError("bad signature")
    body = json.loads(_unb64(payload))
    if int(body["e"]) < now.timestamp():
        raise ValueError("expired")
    return dict(body)


def restore_url(store_url: str, secret: str, order: Mapping[str, Any], now: datetime) -> str:
    # A query argument on the home URL works with plain permalinks too.
    return f"{store_url}/?{PARAM}={make_token(secret, order, now)}"
