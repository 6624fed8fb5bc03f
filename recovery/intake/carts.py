"""Apply normalized platform events to stored carts, customers and orders. Idempotent and order-safe."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.consent import privacy, records as consent
from recovery.storage import tables as t
from recovery.flows import products, signals
from recovery.model import (
    CATALOG_EVENTS,
    CartSnapshot,
    CartStatus,
    CheckoutDeleted,
    ConsentChanged,
    Contact,
    CustomerDataRequest,
    CustomerRedact,
    Event,
    OrderCancelled,
    OrderPlaced,
    PlanChanged,
    ShopRedact,
    strip_token,
)
from recovery.config.store_settings import effective
from recovery.sequence.plan import cancel_pending
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)

OPEN = (CartStatus.ACTIVE.value, CartStatus.ABANDONED.value)


def apply_event(session: Session, store: t.Store, event: Event, timing: Timing = Timing()) -> str:
    """Apply one event inside the caller's transaction; return what happened, for the delivery log."""
    if isinstance(event, CartSnapshot):
        return apply_snapshot(session, store, event, timing)
    if isinstance(event, OrderPlaced):
        return apply_order(session, store, event, timing)
    if isinstance(event, CheckoutDeleted):
        return apply_delete(session, store, event)
    if isinstance(event, OrderCancelled):
        return apply_cancel(session, store, event)
    if isinstance(event, PlanChanged):
        from recovery.billing.subscriptions import apply_plan_change

        return apply_plan_change(session, store.id, event, t.utcnow())
    if isinstance(event, CATALOG_EVENTS):
        from recovery.intake.catalog import apply_catalog_event

        return apply_catalog_event(session, store, event)
    if isinstance(event, ConsentChanged):
        return privacy.apply_consent(session, store, event)
    if isinstance(event, CustomerRedact):
        return privacy.redact_customer(session, store, event.customer)
    if isinstance(event, CustomerDataRequest):
        return privacy.export_customer(session, store, event.customer, event.request_id)
    if isinstance(event, ShopRedact):
        return privacy.erase_shop(session, store)
    return privacy.uninstall(session, store)


def abandon_delay(store: t.Store, timing: Timing = Timing()) -> timedelta:
    """The store's idle time before a cart counts as abandoned, as it passes in this process."""
    return timing.span(effective(store.settings or {})["abandon_after"])


def push_back_abandonment(cart: t.Cart, at: datetime, abandon_after: timedelta) -> None:
    """Activity at `at` moves the abandonment time; older activity never moves it earlier."""
    cart.last_activity_at = max(at, cart.last_activity_at or at)
    cart.abandon_at = cart.last_activity_at + abandon_after


def reopen_if_returned(session: Session, cart: t.Cart, at: datetime) -> None:
    """The shopper came back and changed the cart: what was planned no longer fits it."""
    if cart.status == CartStatus.ABANDONED.value and at > (cart.abandoned_at or at):
        cart.status, cart.abandoned_at = CartStatus.ACTIVE.value, None
        cancel_pending(session, [cart.id], "shopper returned to the cart")


def apply_snapshot(session: Session, store: t.Store, snap: CartSnapshot, timing: Timing = Timing()) -> str:
    abandon_after = abandon_delay(store, timing)
    cart = _find_cart(session, store.id, snap.checkout_token, snap.cart_token)
    if cart is None:
        cart = _insert_cart(session, store, snap, abandon_after)
        if cart is not None:
            consent.on_snapshot(session, store.id, cart, snap)  # consent records, bot carts (send policy)
            link_earlier_order(session, store.id, cart)
            return "cart created"
        cart = _find_cart(session, store.id, snap.checkout_token, snap.cart_token)  # lost a race: update instead
        assert cart is not None
    if cart.platform_updated_at > snap.updated_at:
        return "stale: a newer state is stored"
    if (cart.platform_updated_at == snap.updated_at and snap.delivery_id is not None
            and (cart.platform_delivery_id or 0) > snap.delivery_id):
        return "stale: a later delivery of the same time is stored"  # two workers took them out of order
    _copy_snapshot(cart, snap, abandon_after)
    cart.customer_id = _upsert_customer(session, store.id, snap.contact, snap.updated_at)
    consent.on_snapshot(session, store.id, cart, snap)
    reopen_if_returned(session, cart, snap.updated_at)
    if snap.completed_at and cart.status in OPEN:
        cart.status, cart.completed_at = CartStatus.COMPLETED.value, snap.completed_at
    link_earlier_order(session, store.id, cart)
    return "cart updated"


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
    cart = _find_cart(session, store.id, order.checkout_token, order.cart_token, by_cart_token_only_if_open=False)
    row = t.Order(
        store_id=store.id,
        platform_order_id=order.platform_order_id,
        cart_id=cart.id if cart else None,
        customer_id=_upsert_customer(session, store.id, order.contact, order.placed_at),
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


def apply_delete(session: Session, store: t.Store, deleted: CheckoutDeleted) -> str:
    if not deleted.platform_checkout_id:
        return "no checkout id"
    cart = session.scalar(
        select(t.Cart).where(t.Cart.store_id == store.id, t.Cart.platform_checkout_id == deleted.platform_checkout_id)
    )
    if cart is None or cart.status not in OPEN:
        return "nothing to delete"
    cart.status = CartStatus.DELETED.value
    cancel_pending(session, [cart.id], "checkout deleted")
    return "cart deleted"


def _find_cart(
    session: Session,
    store_id: int,
    checkout_token: str | None,
    cart_token: str | None,
    by_cart_token_only_if_open: bool = True,
) -> t.Cart | None:
    """By checkout token first, then by cart token (opaque, `?key=` stripped); row-locked on PostgreSQL."""
    base = select(t.Cart).where(t.Cart.store_id == store_id).with_for_update()
    if checkout_token:
        cart = session.scalar(base.where(t.Cart.checkout_token == checkout_token))
        if cart is not None:
            return cart
    token = strip_token(cart_token)
    if token:
        query = base.where(t.Cart.cart_token == token)
        if checkout_token and by_cart_token_only_if_open:
            # A tracker cart without checkout yet joins its checkout; a different checkout never merges.
            query = query.where(t.Cart.checkout_token.is_(None))
        return session.scalar(query)
    return None


def _insert_cart(session: Session, store: t.Store, snap: CartSnapshot, abandon_after: timedelta) -> t.Cart | None:
    cart = t.Cart(store_id=store.id, status=CartStatus.ACTIVE.value, source=snap.source)
    _copy_snapshot(cart, snap, abandon_after)
    cart.customer_id = _upsert_customer(session, store.id, snap.contact, snap.updated_at)
    try:
        with session.begin_nested():
            session.add(cart)
    except IntegrityError:
        return None
    return cart


def _copy_snapshot(cart: t.Cart, snap: CartSnapshot, abandon_after: timedelta) -> None:
    c = snap.contact
    _fill(
        cart,
        checkout_token=snap.checkout_token,
        cart_token=strip_token(snap.cart_token),
        platform_checkout_id=snap.platform_checkout_id,
        email=c.email,
        phone=c.phone,
        first_name=c.first_name,
        locale=c.locale,
        country=c.country,
        province=c.province,
    )
    cart.accepts_email = c.accepts_email or bool(cart.accepts_email)
    cart.accepts_sms = c.accepts_sms or bool(cart.accepts_sms)
    cart.line_items = [item.to_json() for item in snap.line_items]
    cart.currency, cart.subtotal, cart.total = snap.currency, snap.subtotal, snap.total
    cart.restore_url = snap.restore_url or cart.restore_url
    cart.device = snap.device or cart.device
    cart.platform_updated_at = snap.updated_at
    cart.platform_delivery_id = snap.delivery_id
    push_back_abandonment(cart, snap.updated_at, abandon_after)
    if snap.created_at and cart.created_at is None:
        cart.created_at = snap.created_at


def _upsert_customer(session: Session, store_id: int, c: Contact, at: datetime) -> int | None:
    if not (c.platform_customer_id or c.email or c.phone):
        return None
    in_store = select(t.Customer).where(t.Customer.store_id == store_id)
    customer = None
    if c.platform_customer_id:
        customer = session.scalar(in_store.where(t.Customer.platform_customer_id == c.platform_customer_id))
    if customer is None and c.email:
        # A guest's row (no platform id yet) is the same shopper; another account's row is not.
        same_email = in_store.where(t.Customer.email == c.email)
        if c.platform_customer_id:
            same_email = same_email.where(t.Customer.platform_customer_id.is_(None))
        customer = session.scalars(same_email.order_by(t.Customer.id).limit(1)).first()
    if customer is None:
        customer = t.Customer(
            store_id=store_id, platform_customer_id=c.platform_customer_id, email_consent=False, sms_consent=False,
            orders_count=0,
        )
        try:
            with session.begin_nested():
                session.add(customer)
        except IntegrityError:
            # Another worker created this customer between our read and our insert.
            customer = session.scalars(in_store.where(t.Customer.platform_customer_id == c.platform_customer_id)).one()
    _fill(
        customer,
        platform_customer_id=c.platform_customer_id,
        email=c.email,
        phone=c.phone,
        first_name=c.first_name,
        last_name=c.last_name,
        locale=c.locale,
        country=c.country,
    )
    if c.orders_count is not None:
        customer.orders_count = c.orders_count
    # A checkbox left unticked is not a withdrawal: only an opt-in is recorded here.
    if c.accepts_email and not customer.email_consent:
        customer.email_consent, customer.email_consent_source, customer.email_consent_at = True, "checkout", at
    if c.accepts_sms and not customer.sms_consent:
        customer.sms_consent, customer.sms_consent_source, customer.sms_consent_at = True, "checkout", at
    session.flush()
    return customer.id


def _fill(row: object, **values: object) -> None:
    """Copy the values a payload carries; a field it leaves out never erases what we know."""
    for name, value in values.items():
        if value:
            setattr(row, name, value)


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
