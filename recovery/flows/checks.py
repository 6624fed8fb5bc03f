"""A flow message's part of the pre-send check (recovery/sending/checks.py asks it instead of "is the cart still
abandoned"): price drop and back in stock need the cart still open and no order by the shopper since;
the cross-sell needs its order neither cancelled nor refunded and the shopper's marketing consent
(transactional consent is not enough); every flow must still be switched on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.consent import records as consent
from recovery.storage import tables as t
from recovery.flows import BACK_IN_STOCK, BROWSE, CROSS_SELL, PRICE_DROP
from recovery.flows.browse import BOUGHT, in_cart
from recovery.model import CartStatus
from recovery.config.store_settings import effective

#: Flows whose message is about the abandoned cart itself.
CART_FLOWS = (PRICE_DROP, BACK_IN_STOCK)


def reasons(session: Session, batch: Sequence[Any], ordered: set[int]) -> dict[int, str]:
    """Message id → why this flow message may not go; `ordered`: carts whose shopper ordered since."""
    out: dict[int, str] = {}
    orders = _orders(session, [c for c in batch if c.message.flow == CROSS_SELL])
    customers = {c.id: c for c in session.scalars(select(t.Customer).where(
        t.Customer.id.in_({c.cart.customer_id for c in batch if c.cart.customer_id})))}
    records = consent.latest(session, [c.cart for c in batch if c.message.flow == CROSS_SELL])
    for candidate in batch:
        message, cart, store = candidate.message, candidate.cart, candidate.store
        flow = message.flow
        if not effective(store.settings or {}).get(flow, False):
            out[message.id] = f"{flow} turned off"
        elif flow in CART_FLOWS and cart.status != CartStatus.ABANDONED.value:
            out[message.id] = f"cart is {cart.status}"
        elif flow in CART_FLOWS + (BROWSE,) and cart.id in ordered:
            out[message.id] = "shopper ordered"
        elif flow == BROWSE and (cart.status in BOUGHT or in_cart(cart, str((message.flow_data or {}).get("product_id")))):
            out[message.id] = "product bought or in the cart"
        elif flow == CROSS_SELL:
            order = orders.get(int((message.flow_data or {}).get("order_id") or 0))
            record = records.get((store.id, "email", consent.normalize("email", cart.email) or ""))
            customer = customers.get(cart.customer_id or 0)
            if order is None or order.cancelled_at is not None:
                out[message.id] = "order cancelled"
            elif order.refunded_at is not None:
                out[message.id] = "order refunded"
            elif not marketing_consent(cart, customer, record):
                out[message.id] = "no_marketing_consent"
    return out


def marketing_consent(cart: t.Cart, customer: t.Customer | None, record: consent.Record | None) -> bool:
    """A subscription the shopper chose: a ticked box or the platform's record, never "gave an email"."""
    if record is not None:
        return record.granted and record.basis != "checkout_email"
    return cart.accepts_email or bool(customer and customer.email_consent)


def _orders(session: Session, batch: Sequence[Any]) -> dict[int, t.Order]:
    ids = {int((c.message.flow_data or {}).get("order_id") or 0) for c in batch} - {0}
    if not ids:
        return {}
    return {o.id: o for o in session.scalars(select(t.Order).where(t.Order.id.in_(ids)))}
