"""Orders applied to carts: an order links to its cart, stops everything pending for the shopper, and is
attributed (recovered: one of our messages went out within the attribution window; else completed); a
cancellation undoes that; fulfilment and refunds are later facts of the same order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from recovery.config.store_settings import effective
from recovery.flows import products, signals
from recovery.intake.rows import OPEN, find_cart, upsert_customer
from recovery.model import CartStatus, Contact, OrderCancelled, OrderPlaced, strip_token
from recovery.sequence.plan import cancel_pending
from recovery.sequence.timing import Timing
from recovery.storage import tables as t


def link_earlier_order(session: Session, store_id: int, cart: t.Cart) -> None:
    """The order may have been processed before this checkout: a bought cart must never look open."""
    if cart.status not in OPEN:
        return
    clauses = [t.Order.checkout_token == cart.checkout_token] if cart.checkout_token else []
    if cart.cart_token:
        clauses.append(t.Order.cart_token == cart.cart_token)
    if not clauses:
        return
    order = session.scalars(
        select(t.Order).where(t.Order.store_id == store_id, t.Order.cancelled_at.is_(None), or_(*clauses)).limit(1)
    ).first()
    if order is None:
        return
    order.cart_id = order.cart_id or cart.id
    cart.status, cart.completed_at = order.attribution, order.placed_at
    if order.attribution == CartStatus.RECOVERED.value:
        cart.recovered_at = order.placed_at


def apply_order(session: Session, store: t.Store, order: OrderPlaced, timing: Timing = Timing()) -> str:
    existing = session.scalar(
        select(t.Order).where(t.Order.store_id == store.id, t.Order.platform_order_id == order.platform_order_id)
    )
    if existing is not None:
        return _order_later_facts(session, store, existing, order) or "order already recorded"
    cart = find_cart(session, store.id, order.checkout_token, order.cart_token, by_cart_token_only_if_open=False)
    row = t.Order(
        store_id=store.id,
        platform_order_id=order.platform_order_id,
        cart_id=cart.id if cart else None,
        customer_id=upsert_customer(session, store.id, order.contact, order.placed_at),
        checkout_token=order.checkout_token,
        cart_token=strip_token(order.cart_token),
        email=order.contact.email,
        phone=order.contact.phone,
        name=order.name,
        currency=order.currency,
        total=order.total,
        placed_at=order.placed_at,
    )
    session.add(row)
    session.flush()  # its id, for its lines
    products.order_recorded(session, store, row, order.line_items)
    _order_later_facts(session, store, row, order)
    shopper_carts = _shopper_cart_ids(session, store.id, order.contact, cart)
    row.attribution = _attribute(session, store, shopper_carts, order.placed_at, timing)
    # An order stops everything pending for this cart and this shopper, in the same transaction.
    cancel_pending(session, shopper_carts, "shopper ordered")
    if cart is not None and cart.status in OPEN:
        cart.status = row.attribution
        cart.completed_at = order.placed_at
        if row.attribution == CartStatus.RECOVERED.value:
            cart.recovered_at = order.placed_at
    return f"order recorded ({row.attribution}, {'linked' if cart else 'no cart'})"


def _order_later_facts(session: Session, store: t.Store, row: t.Order, order: OrderPlaced) -> str | None:
    """Fulfilment (the cross-sell flow's start) and a full refund, whichever delivery first says so."""
    if order.refunded and row.refunded_at is None:
        row.refunded_at = order.fulfilled_at or order.placed_at
        return "order refunded"
    if order.fulfilled_at is not None and row.fulfilled_at is None:
        row.fulfilled_at = order.fulfilled_at
        signals.order_fulfilled(session, store, row, order.fulfilled_at)
        return "order fulfilled"
    return None


def apply_cancel(session: Session, store: t.Store, cancelled: OrderCancelled) -> str:
    """A cancelled order no longer counts: its cart is no longer recovered or completed."""
    order = session.scalar(
        select(t.Order).where(t.Order.store_id == store.id, t.Order.platform_order_id == cancelled.platform_order_id)
    )
    if order is None:
        return "no such order"
    if order.cancelled_at is not None:
        return "order already cancelled"
    order.cancelled_at = cancelled.cancelled_at
    cart = session.get(t.Cart, order.cart_id) if order.cart_id else None
    if cart is not None and cart.status in (CartStatus.RECOVERED.value, CartStatus.COMPLETED.value):
        # Back to abandoned, without a new sequence: the shopper did decide, just not to keep it.
        was = cart.status
        cart.status = CartStatus.ABANDONED.value if cart.abandoned_at else CartStatus.ACTIVE.value
        cart.recovered_at = cart.completed_at = None
        return f"order cancelled; cart no longer {was}"
    return "order cancelled"


def _shopper_cart_ids(session: Session, store_id: int, c: Contact, cart: t.Cart | None) -> list[int]:
    ids = {cart.id} if cart else set()
    clauses = [t.Cart.email == c.email] if c.email else []
    if c.phone:
        clauses.append(t.Cart.phone == c.phone)
    if clauses:
        ids.update(session.scalars(select(t.Cart.id).where(t.Cart.store_id == store_id, or_(*clauses))))
    return sorted(ids)


def _attribute(session: Session, store: t.Store, cart_ids: list[int], placed_at: datetime, timing: Timing) -> str:
    """Recovered when one of our messages to this shopper went out within the attribution window."""
    if not cart_ids:
        return CartStatus.COMPLETED.value
    window = timing.span(effective(store.settings or {})["attribution_window"]).total_seconds()
    last_sent = session.scalar(
        select(t.RecoveryMessage.sent_at)
        .where(t.RecoveryMessage.cart_id.in_(cart_ids), t.RecoveryMessage.sent_at.is_not(None))
        .order_by(t.RecoveryMessage.sent_at.desc())
        .limit(1)
    )
    if last_sent is not None and 0 <= (placed_at - last_sent).total_seconds() <= window:
        return CartStatus.RECOVERED.value
    return CartStatus.COMPLETED.value
