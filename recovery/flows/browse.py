"""Browse abandonment: the dispatcher's pass over product views that came due (recovery/intake/views.py).

A known shopper (the session's views are linked to a cart with an email address, in this session or, by the
tracker's visitor id, an earlier one) who viewed a product page at least twice in a session without adding it
to the cart gets one reminder `browse_abandonment_after` after the last view; not when the cart holds the
product (or bought it), nor when it was bought during the session (a cart bought before is history); once per product per shopper per 30 days (plan.fire's key), with the flow's own holdout.
What it shows comes from recorded catalog facts (`product_stats`); an unknown product plans nothing.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.config.store_settings import effective
from recovery.flows import BROWSE
from recovery.flows.plan import Firing, fire
from recovery.model import CartStatus
from recovery.storage import tables as t

#: Views one pass takes.
VIEWS_PER_PASS = 500
#: Views that came due longer ago than this (say, linked to a cart only later) are no longer news.
STALE = timedelta(days=2)
MIN_VIEWS = 2
#: The shopper ordered: no browse reminder (the send-time check asks again).
BOUGHT = (CartStatus.RECOVERED.value, CartStatus.COMPLETED.value)
#: A tracker session lasts at most this long (its id rotates after 24 h): a cart bought before the session's
#: views could have begun is the shopper's history (a shopper known from an earlier session), not a purchase
#: after viewing.
SESSION_SPAN = timedelta(hours=24)


def bought_since(cart: t.Cart, since: datetime) -> bool:
    """The cart was bought at or after `since` (a bought cart with no time recorded counts as bought)."""
    if cart.status not in BOUGHT:
        return False
    at = cart.recovered_at or cart.completed_at
    return at is None or at >= since


def in_cart(cart: t.Cart, product_id: str) -> bool:
    return any(str(i.get("product_id") or "") == product_id and int(i.get("quantity") or 0) > 0
               for i in cart.line_items or ())


def product_url(store: t.Store, stat: t.ProductStat) -> str:
    return f"https://{store.domain}/products/{stat.handle}" if stat.handle else f"https://{store.domain}"


def run(session: Session, now: datetime, limit: int = VIEWS_PER_PASS) -> Counter[str]:
    """Plan the reminders for views that came due (row-locked, skipping another dispatcher's); caller commits."""
    views = session.scalars(
        select(t.ProductView).where(
            t.ProductView.processed_at.is_(None), t.ProductView.due_at <= now, t.ProductView.due_at > now - STALE,
            t.ProductView.views >= MIN_VIEWS, t.ProductView.cart_id.is_not(None),
        ).order_by(t.ProductView.due_at).limit(limit).with_for_update(skip_locked=True)
    ).all()  # fmt: skip
    total: Counter[str] = Counter()
    by_store: dict[int, list[t.ProductView]] = {}
    for view in views:
        view.processed_at = now
        by_store.setdefault(view.store_id, []).append(view)
    for store_id, rows in by_store.items():
        store = session.get(t.Store, store_id)
        settings = effective((store.settings if store else None) or {})
        if store is None or not store.active or not settings[BROWSE]:
            continue
        carts = {c.id: c for c in session.scalars(select(t.Cart).where(t.Cart.id.in_({v.cart_id for v in rows})))}
        stats = {s.product_id: s for s in session.scalars(select(t.ProductStat).where(
            t.ProductStat.store_id == store_id, t.ProductStat.product_id.in_({v.product_id for v in rows})))}
        firings = []
        for view in rows:
            cart, stat = carts.get(view.cart_id or 0), stats.get(view.product_id)
            if cart is None or not cart.email:  # email only: the flow has no SMS copy
                total["unknown_shopper"] += 1
            elif in_cart(cart, view.product_id) or bought_since(cart, view.last_at - SESSION_SPAN):
                total["bought_or_in_cart"] += 1
            elif stat is None:
                total["unknown_product"] += 1
            else:
                data = {"product_id": view.product_id, "item": stat.title[:255], "url": product_url(store, stat),
                        "viewed_at": view.last_at.isoformat()}
                firings.append(Firing(cart, f"product:{view.product_id}", "email", BROWSE, now, data))
        total += fire(session, store, BROWSE, firings, now)
    return total
