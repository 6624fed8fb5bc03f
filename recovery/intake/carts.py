"""Apply normalized platform events: each event to its place (orders: recovery/intake/orders.py; catalog, consent
and privacy events elsewhere), and cart snapshots and deletions here. Idempotent and order-safe."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recovery.consent import privacy, records as consent
from recovery.storage import tables as t
from recovery.model import (
    CATALOG_EVENTS,
    CartSnapshot,
    CartStatus,
    CheckoutDeleted,
    ConsentChanged,
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
from recovery.intake.orders import apply_cancel, apply_order, link_earlier_order
from recovery.intake.rows import OPEN, fill, find_cart, upsert_customer

log = logging.getLogger(__name__)


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
    cart = find_cart(session, store.id, snap.checkout_token, snap.cart_token)
    if cart is None:
        cart = _insert_cart(session, store, snap, abandon_after)
        if cart is not None:
            consent.on_snapshot(session, store.id, cart, snap)  # consent records, bot carts (send policy)
            link_earlier_order(session, store.id, cart)
            return "cart created"
        cart = find_cart(session, store.id, snap.checkout_token, snap.cart_token)  # lost a race: update instead
        assert cart is not None
    if cart.platform_updated_at > snap.updated_at:
        return "stale: a newer state is stored"
    if (cart.platform_updated_at == snap.updated_at and snap.delivery_id is not None
            and (cart.platform_delivery_id or 0) > snap.delivery_id):
        return "stale: a later delivery of the same time is stored"  # two workers took them out of order
    _copy_snapshot(cart, snap, abandon_after)
    cart.customer_id = upsert_customer(session, store.id, snap.contact, snap.updated_at)
    consent.on_snapshot(session, store.id, cart, snap)
    reopen_if_returned(session, cart, snap.updated_at)
    if snap.completed_at and cart.status in OPEN:
        cart.status, cart.completed_at = CartStatus.COMPLETED.value, snap.completed_at
    link_earlier_order(session, store.id, cart)
    return "cart updated"


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


def _insert_cart(session: Session, store: t.Store, snap: CartSnapshot, abandon_after: timedelta) -> t.Cart | None:
    cart = t.Cart(store_id=store.id, status=CartStatus.ACTIVE.value, source=snap.source)
    _copy_snapshot(cart, snap, abandon_after)
    cart.customer_id = upsert_customer(session, store.id, snap.contact, snap.updated_at)
    try:
        with session.begin_nested():
            session.add(cart)
    except IntegrityError:
        return None
    return cart


def _copy_snapshot(cart: t.Cart, snap: CartSnapshot, abandon_after: timedelta) -> None:
    c = snap.contact
    fill(
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
