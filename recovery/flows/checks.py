"""A flow message's part of the pre-send check (recovery/sending/checks.py asks it instead of "is the cart still
abandoned"): price drop and back in stock need the cart still open and no order by the shopper since;
the cross-sell needs its order neither cancelled nor refunded and the shopper's marketing consent
(transactional consent is not enough); every flow must still be switched on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from recovery.consent import records as consent
from recovery.storage import tables as t
from recovery.flows import BACK_IN_STOCK, BROWSE, CROSS_SELL, PRICE_DROP
from recovery.flows.browse import BOUGHT, SESSION_SPAN, bought_since, in_cart
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
    browsed_then_ordered = _ordered_after_views(session, [c for c in batch if c.message.flow == BROWSE])
    for candidate in batch:
        message, cart, store = candidate.message, candidate.cart, candidate.store
        flow = message.flow
        if not effective(store.settings or {}).get(flow, False):
            out[message.id] = f"{flow} turned off"
        elif flow in CART_FLOWS and cart.status != CartStatus.ABANDONED.value:
            out[message.id] = f"cart is {cart.status}"
        elif flow in CART_FLOWS and cart.id in ordered:
            out[message.id] = "shopper ordered"
        elif flow == BROWSE:
            data = message.flow_data or {}
            viewed = _viewed_at(data)
            if in_cart(cart, str(data.get("product_id"))) or (
                    cart.status in BOUGHT if viewed is None else bought_since(cart, viewed - SESSION_SPAN)):
                out[message.id] = "product bought or in the cart"
            elif cart.id in ordered if viewed is None else candidate.message.id in browsed_then_ordered:
                out[message.id] = "shopper ordered"
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


def _viewed_at(data: dict[str, Any]) -> datetime | None:
    """The last view's time (browse reminders planned before it was recorded have none)."""
    try:
        return datetime.fromisoformat(str(data["viewed_at"]))
    except (KeyError, ValueError):
        return None


def _ordered_after_views(session: Session, batch: Sequence[Any]) -> set[int]:
    """Browse messages whose shopper (same cart, customer or email) placed an order, not cancelled, after the
    last view: a shopper known from an earlier session may have bought then, which is no reason to stay silent."""
    wanted = [(c, at) for c in batch if (at := _viewed_at(c.message.flow_data or {})) is not None]
    if not wanted:
        return set()
    carts = [c.cart for c, _ in wanted]
    orders = session.execute(
        select(t.Order.store_id, t.Order.cart_id, t.Order.customer_id, t.Order.email, t.Order.placed_at).where(
            t.Order.store_id.in_({c.store_id for c in carts}), t.Order.cancelled_at.is_(None),
            t.Order.placed_at >= min(at for _, at in wanted),
            or_(t.Order.cart_id.in_([c.id for c in carts]),
                t.Order.customer_id.in_({c.customer_id for c in carts if c.customer_id}),
                t.Order.email.in_({c.email for c in carts if c.email})),
        )
    ).all()  # fmt: skip
    found = set()
    for candidate, at in wanted:
        cart = candidate.cart
        for o in orders:
            same = o.cart_id == cart.id or (cart.customer_id and o.customer_id == cart.customer_id) or (
                cart.email and o.email == cart.email)
            if same and o.store_id == cart.store_id and o.placed_at >= at:
                found.add(candidate.message.id)
    return found
