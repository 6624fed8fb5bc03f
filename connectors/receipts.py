"""The join keys of an order delivery, read at the edge for its receipt (recovery/intake/receipts.py explains why).

Tolerant on purpose: a payload the worker will later reject still yields whatever keys it has, so the
acknowledged purchase holds the shopper's reminders all the same. Only dict lookups: this runs on the
webhook hot path, and for topics that are no order it returns at the first test.
"""

from __future__ import annotations

from typing import Any

from connectors.woocommerce.normalize import CONTEXT_KEY, DEFAULT_PAID_STATUSES, checkout_token
from recovery.intake.receipts import receipt_columns

#: Shopify topics that announce a purchase (orders/updated also fires for old orders' fulfilments).
SHOPIFY_ORDER_TOPICS = frozenset(("orders/create", "orders/paid"))
WOO_ORDER_TOPICS = frozenset(("order.created", "order.updated"))


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def order_keys(platform: str, topic: str, payload: dict[str, Any]) -> dict[str, str | None] | None:
    """The receipt columns for an order delivery, or None if the delivery announces no purchase."""
    if platform == "shopify":
        if topic not in SHOPIFY_ORDER_TOPICS:
            return None
        customer = _obj(payload.get("customer"))
        email = payload.get("email") or payload.get("contact_email") or customer.get("email")
        phone = payload.get("phone") or customer.get("phone")
        return receipt_columns(payload.get("checkout_token"), payload.get("cart_token"), email, phone)
    if platform == "woocommerce":
        if topic not in WOO_ORDER_TOPICS:
            return None
        paid = _obj(payload.get(CONTEXT_KEY)).get("paid_statuses") or DEFAULT_PAID_STATUSES
        order_id = payload.get("id")
        if payload.get("status") not in paid or order_id is None or isinstance(order_id, (dict, list)):
            return None
        billing = _obj(payload.get("billing"))
        return receipt_columns(checkout_token(str(order_id)), None, billing.get("email"), billing.get("phone"))
    return None
