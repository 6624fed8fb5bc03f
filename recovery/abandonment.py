"""Idle carts with contact details become abandoned: holdout or sequence, one sequence per shopper.

Work is done per batch of carts, with a fixed number of queries per batch, not per cart.
"""

from __future__ import annotations

import logging
import random
from functools import partial
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import insert, or_, select
from sqlalchemy.orm import Session

from recovery import push
from recovery import tables as t
from recovery.carts import cancel_pending
from recovery.model import CartStatus
from recovery.policy import fit_due
from recovery.sequence import SendTimeModel, first_offsets, plan, store_sequence
from recovery.store_settings import effective
from recovery.timing import Timing

log = logging.getLogger(__name__)

HOLDOUT = "holdout"
DEFAULT_CANDIDATES: tuple[float, ...] = tuple(0.5 + 0.25 * i for i in range(15))


@dataclass
class Abandoner:
    send_time: SendTimeModel
    timing: Timing
    rng: random.Random
    candidates: Sequence[float] = DEFAULT_CANDIDATES

    def run(self, session: Session, now: datetime, limit: int = 500) -> list[int]:
        """Abandon every due cart (row-locked, skipping carts another dispatcher holds); caller commits.

        Locks (recovery/locks.py): carts, then their messages, then the assignments' inserts; no store lock
        (the inserts' foreign-key KEY SHARE on the store never waits: intake holds FOR NO KEY UPDATE)."""
        due = session.scalars(
            select(t.Cart)
            .where(
                t.Cart.status == CartStatus.ACTIVE.value,
                t.Cart.abandon_at <= now,
                or_(t.Cart.email.is_not(None), t.Cart.phone.is_not(None)),
            )
            .order_by(t.Cart.abandon_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not due:
            return []
        ids = [c.id for c in due]
        stores = {s.id: s for s in session.scalars(select(t.Store).where(t.Store.id.in_({c.store_id for c in due})))}
        customer_ids = {c.customer_id for c in due if c.customer_id}
        customers = {c.id: c for c in session.scalars(select(t.Customer).where(t.Customer.id.in_(customer_ids)))}
        variants = self._assign(session, due, stores, now)
        superseded = _supersede(session, due)
        subscribed = push.carts_with_subscription(session, ids)  # push steps only where a browser subscribed
        existing: dict[int, dict[int, t.RecoveryMessage]] = {}
        for message in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id.in_(ids))):
            existing.setdefault(message.cart_id, {})[message.step] = message
        new_rows: list[dict[str, object]] = []
        for cart in due:
            cart.status, cart.abandoned_at = CartStatus.ABANDONED.value, now
            store = stores[cart.store_id]
            if store.active and variants[cart.id] != HOLDOUT and cart.id not in superseded:
                new_rows += self._plan(
                    store, cart, customers.get(cart.customer_id or 0), existing.get(cart.id, {}), cart.id in subscribed
                )
        if new_rows:  # one bulk insert per batch: ORM objects cost more than the rows themselves
            session.execute(insert(t.RecoveryMessage), new_rows)
        return ids

    def _plan(
        self,
        store: t.Store,
        cart: t.Cart,
        customer: t.Customer | None,
        existing: dict[int, t.RecoveryMessage],
        has_push: bool = False,
    ) -> list[dict[str, object]]:
        settings = effective(store.settings or {})
        sms_allowed = bool(settings["sms_enabled"]) and (cart.accepts_sms or bool(customer and customer.sms_consent))
        offsets = first_offsets(settings, self.candidates)
        best = self.send_time.best_offset(cart_features(cart, customer, store), offsets)
        best = min(max(best, min(offsets)), max(offsets))  # a fallback policy may not know the window
        fit = partial(fit_due, cart=cart, store=store, settings=settings, timing=self.timing)  # legal SMS hours
        return plan(cart, store_sequence(settings), best, self.timing, sms_allowed, existing, has_push, fit)

    def _assign(
        self, session: Session, carts: Sequence[t.Cart], stores: Mapping[int, t.Store], now: datetime
    ) -> dict[int, str]:
        """Random and recorded once: a cart that is abandoned again keeps its group."""
        rows = session.execute(
            select(t.ExperimentAssignment.cart_id, t.ExperimentAssignment.variant).where(
                t.ExperimentAssignment.cart_id.in_([c.id for c in carts]),
                t.ExperimentAssignment.experiment == HOLDOUT,
            )
        ).all()
        variants = {cart_id: variant for cart_id, variant in rows}
        new = []
        for cart in carts:
            if cart.id in variants:
                continue
            percent = effective(stores[cart.store_id].settings or {})["holdout_percent"]
            variants[cart.id] = HOLDOUT if self.rng.random() * 100 < percent else "treatment"
            new.append({"store_id": cart.store_id, "cart_id": cart.id, "experiment": HOLDOUT,
                        "variant": variants[cart.id], "assigned_at": now})
        if new:
            session.execute(insert(t.ExperimentAssignment), new)
        return variants


def _supersede(session: Session, carts: Sequence[t.Cart]) -> set[int]:
    """The shopper's newest cart is the only one with a sequence: cancel older carts' pending messages.

    Returns the carts of this batch that are themselves older than another cart of their shopper
    (in the batch or not): they are abandoned without a sequence.
    """
    emails = {c.email for c in carts if c.email}
    phones = {c.phone for c in carts if c.phone}
    candidates = session.execute(
        select(t.Cart.id, t.Cart.store_id, t.Cart.email, t.Cart.phone, t.Cart.abandon_at).where(
            t.Cart.store_id.in_({c.store_id for c in carts}),
            or_(t.Cart.email.in_(emails), t.Cart.phone.in_(phones)),
        )
    ).all()
    by_contact: dict[tuple[int, str], list[tuple[int, datetime | None]]] = {}
    for row in candidates:
        for contact in {row.email, row.phone} - {None}:
            by_contact.setdefault((row.store_id, contact), []).append((row.id, row.abandon_at))
    older: set[int] = set()
    for cart in carts:
        others = [
            (other_id, at)
            for contact in {cart.email, cart.phone} - {None}
            for other_id, at in by_contact.get((cart.store_id, contact), [])
            if other_id != cart.id
        ]
        if any(at and cart.abandon_at and at > cart.abandon_at for _, at in others):
            older.add(cart.id)  # the shopper has moved on to a newer cart
        else:
            older.update(other_id for other_id, _ in others)
    cancel_pending(session, sorted(older), "superseded by a newer cart")
    return older


def cart_features(cart: t.Cart, customer: t.Customer | None, store: t.Store) -> Mapping[str, float]:
    """The send-time model's cart features; unknown ones are left out (the model uses neutral values)."""
    assert cart.abandoned_at is not None
    local = cart.abandoned_at.astimezone(_zone(cart.shopper_timezone or store.timezone))
    features: dict[str, float] = {
        "hour_of_abandonment": local.hour,
        "day_of_week": local.weekday(),
        "cart_value": float(cart.total),  # a model input, not money: float is fine here
        "items_in_cart": sum(int(i.get("quantity", 0)) for i in cart.line_items),
        "viewed_checkout": 1.0 if cart.checkout_token else 0.0,
        "device_type": {"desktop": 0.0, "mobile": 1.0, "tablet": 2.0}.get(cart.device or "", 0.0),
    }
    if customer is not None:
        features["previous_purchases"] = customer.orders_count
    return features


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
