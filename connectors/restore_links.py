"""Restore links for carts known only from the storefront tracker (an email typed into the exit popup, no
platform checkout): rebuilt from the cart's recorded items when the shopper clicks, so they follow its
latest contents. Shopify: the cart permalink `/cart/<variant>:<qty>,...`; WooCommerce: the plugin's signed
restore endpoint (connectors.woocommerce.restore), with the cart's email for the offer code's restriction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.woocommerce.restore import restore_url
from recovery.storage import tables as t
from recovery.storage.crypto import Vault

MAX_ITEMS = 50


def rebuild_restore_url(session: Session, cart_id: int, vault: Vault, now: datetime) -> str | None:
    cart = session.get(t.Cart, cart_id)
    if cart is None:
        return None
    if cart.restore_url:
        return cart.restore_url
    store = session.get(t.Store, cart.store_id)
    items = [(_id(i.get("variant_id")), _id(i.get("product_id")), _qty(i.get("quantity")))
             for i in (cart.line_items or []) if isinstance(i, dict)][:MAX_ITEMS]
    if store is None:
        return None
    if store.platform == "shopify":
        lines = [f"{variant}:{qty}" for variant, _, qty in items if variant and qty]
        return f"https://{store.domain}/cart/{','.join(lines)}" if lines else None
    if store.platform == "woocommerce":
        connection = session.scalar(select(t.WooConnection).where(t.WooConnection.store_id == store.id))
        if connection is None or not connection.plugin_secret:
            return None
        # The Store API's item id is the variation's when there is one; WooCommerce's add_to_cart finds
        # the parent product of a variation id itself.
        lines = [{"product_id": variant or product, "variation_id": 0, "quantity": qty}
                 for variant, product, qty in items if (variant or product) and qty]
        if not lines:
            return None
        secret = vault.open(connection.plugin_secret)["restore_secret"]
        order = {"id": 0, "line_items": lines, "billing": {"email": cart.email}}
        return restore_url(connection.store_url, secret, order, now)
    return None


def _id(value: Any) -> int:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) <= 20 else 0


def _qty(value: Any) -> int:
    return value if isinstance(value, int) and 0 < value <= 10_000 else 0
