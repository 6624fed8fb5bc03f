"""The dispatcher's flow pass: pending signals → the shoppers they concern → messages (plan.fire).

A price drop or restock reaches every open abandoned cart holding the variant: one query finds them
(PostgreSQL: a JSONB containment test on the cart lines), then a fixed number of statements per
thousand carts plans them (recovery/flows/plan.py).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.flows import BACK_IN_STOCK, CROSS_SELL, PRICE_DROP
from recovery.flows.plan import Firing, fire
from recovery.flows.signals import FULFILLED
from recovery.model import CartStatus
from recovery.config.store_settings import effective
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)

#: Signals one pass takes (each may fan out to many carts).
SIGNALS_PER_PASS = 50


def run(session: Session, now: datetime, timing: Timing = Timing(), limit: int = SIGNALS_PER_PASS) -> Counter[str]:
    """Fan out pending signals (row-locked, skipping those another dispatcher holds); caller commits."""
    signals = session.scalars(
        select(t.FlowSignal).where(t.FlowSignal.processed_at.is_(None)).order_by(t.FlowSignal.id)
        .limit(limit).with_for_update(skip_locked=True)
    ).all()  # fmt: skip
    total: Counter[str] = Counter()
    if not signals:
        return total
    stores = {s.id: s for s in session.scalars(select(t.Store).where(t.Store.id.in_({x.store_id for x in signals})))}
    for signal in signals:
        store = stores[signal.store_id]
        signal.processed_at = now
        if not store.active:
            continue
        try:
            with session.begin_nested():  # one signal that fails never blocks the others (nor itself again)
                if signal.kind in (PRICE_DROP, BACK_IN_STOCK):
                    total += variant_news(session, store, signal, now)
                elif signal.kind == FULFILLED:
                    total += cross_sell(session, store, signal, now, timing)
        except SQLAlchemyError:
            log.exception("flow signal %s (%s) failed; dropped", signal.id, signal.kind)
            total["failed"] += 1
    if total:
        log.info("flows fired: %s", dict(total))
    return total


def threshold(text_value: str) -> tuple[Decimal, Decimal]:
    """`5%` → (5, 1): percent, and minimum amount (default one unit of currency); `5%+2` → (5, 2)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)%(?:\+(\d+(?:\.\d+)?))?", str(text_value))
    if not match:
        return Decimal(5), Decimal(1)
    return Decimal(match.group(1)), Decimal(match.group(2) or 1)


def holding(session: Session, store_id: int, variant_id: str) -> Sequence[t.Cart]:
    """Open abandoned carts with a line of this variant (or of this product, for lines naming none)."""
    query = select(t.Cart).where(t.Cart.store_id == store_id, t.Cart.status == CartStatus.ABANDONED.value)
    if session.get_bind().dialect.name == "postgresql":
        query = query.where(or_(
            text("carts.line_items @> CAST(:by_variant AS jsonb)"), text("carts.line_items @> CAST(:by_product AS jsonb)")
        )).params(by_variant=json.dumps([{"variant_id": variant_id}]),
                  by_product=json.dumps([{"variant_id": None, "product_id": variant_id}]))  # fmt: skip
        return session.scalars(query).all()
    return [c for c in session.scalars(query) if _line(c, variant_id) is not None]


def _line(cart: t.Cart, variant_id: str) -> dict[str, Any] | None:
    for item in cart.line_items or ():
        same = str(item.get("variant_id") or "") == variant_id or (
            item.get("variant_id") is None and str(item.get("product_id") or "") == variant_id
        )
        if same and int(item.get("quantity") or 0) > 0:
            return item
    return None


def variant_news(session: Session, store: t.Store, signal: t.FlowSignal, now: datetime) -> Counter[str]:
    settings = effective(store.settings or {})
    flow = signal.kind
    if not settings[flow]:
        return Counter()
    price = None
    if flow == PRICE_DROP:
        current = session.scalar(select(t.VariantPrice).where(
            t.VariantPrice.store_id == store.id, t.VariantPrice.variant_id == signal.subject))
        if current is None or current.price != signal.price:
            return Counter(superseded=1)  # a later change has its own signal
        price = current.price
    percent, minimum = threshold(settings["price_drop_threshold"])
    carts = holding(session, store.id, signal.subject)
    sms_customers = sms_consented(session, [c for c in carts if not c.email and c.phone and c.customer_id])
    firings = []
    for cart in carts:
        line = _line(cart, signal.subject)
        channel = channel_for(cart, settings, sms_customers)
        if line is None or channel is None:
            continue
        data: dict[str, Any] = {"variant_id": signal.subject, "item": str(line.get("title") or "")[:255]}
        if price is not None:
            saw = Decimal(str(line["unit_price"]))
            if cart.currency != signal.currency or saw - price < max(saw * percent / 100, minimum):
                continue
            data.update(now=str(price), was=str(saw))
        firings.append(Firing(cart, signal.subject, channel, flow, now, data))
    return fire(session, store, flow, firings, now)


def sms_consented(session: Session, carts: Sequence[t.Cart]) -> set[int]:
    ids = {c.customer_id for c in carts if c.customer_id}
    if not ids:
        return set()
    return set(session.scalars(select(t.Customer.id).where(t.Customer.id.in_(ids), t.Customer.sms_consent.is_(True))))


def channel_for(cart: t.Cart, settings: dict[str, Any], sms_customers: set[int]) -> str | None:
    """Email; SMS only for a shopper without an email who consented to texts."""
    if cart.email:
        return "email"
    if cart.phone and settings["sms_enabled"] and (cart.accepts_sms or cart.customer_id in sms_customers):
        return "sms"
    return None


def cross_sell(session: Session, store: t.Store, signal: t.FlowSignal, now: datetime, timing: Timing) -> Counter[str]:
    """One "complete the look" email, `cross_sell_after` after fulfilment, for an order made from a cart we
    know (its shopper's address and language); what it recommends is chosen when it is sent."""
    settings = effective(store.settings or {})
    if not settings[CROSS_SELL]:
        return Counter()
    order = session.scalar(select(t.Order).where(t.Order.store_id == store.id,
                                                 t.Order.platform_order_id == signal.subject))
    if order is None or order.cancelled_at or order.refunded_at or order.cart_id is None:
        return Counter(no_cart_or_undone=1)
    cart = session.get(t.Cart, order.cart_id)
    if cart is None or not cart.email:
        return Counter(no_email=1)
    products = sorted(set(session.scalars(select(t.OrderItem.product_id).where(t.OrderItem.order_id == order.id))))
    due = (order.fulfilled_at or now) + timing.span(settings["cross_sell_after"])
    data = {"order_id": order.id, "products": products, "item": ""}
    return fire(session, store, CROSS_SELL, [Firing(cart, f"order:{order.platform_order_id}", "email", CROSS_SELL,
                                                    due, data)], now)
