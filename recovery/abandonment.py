"""Idle carts with contact details become abandoned: holdout or sequence, one sequence per shopper."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from recovery import tables as t
from recovery.model import CartStatus
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
        """Abandon every due cart (row-locked, skipping carts another dispatcher holds); caller commits."""
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
        stores = {s.id: s for s in session.scalars(select(t.Store).where(t.Store.id.in_({c.store_id for c in due})))}
        for cart in due:
            self.abandon(session, stores[cart.store_id], cart, now)
        return [c.id for c in due]

    def abandon(self, session: Session, store: t.Store, cart: t.Cart, now: datetime) -> str:
        cart.status, cart.abandoned_at = CartStatus.ABANDONED.value, now
        if not store.active:
            return "store uninstalled"
        settings = effective(store.settings or {})
        variant = self._assign(session, cart, settings["holdout_percent"])
        superseded = _supersede(session, cart)
        if variant == HOLDOUT:
            return "holdout"
        customer = session.get(t.Customer, cart.customer_id) if cart.customer_id else None
        sms_allowed = bool(settings["sms_enabled"]) and (cart.accepts_sms or bool(customer and customer.sms_consent))
        offsets = first_offsets(settings, self.candidates)
        best = self.send_time.best_offset(cart_features(cart, customer, store), offsets)
        best = min(max(best, min(offsets)), max(offsets))  # a fallback policy may not know the window
        rows = plan(session, cart, store_sequence(settings), best, self.timing, sms_allowed)
        return f"planned {len(rows)} messages" + (f", superseded {superseded}" if superseded else "")

    def _assign(self, session: Session, cart: t.Cart, holdout_percent: int) -> str:
        """Random and recorded once: a cart that is abandoned again keeps its group."""
        existing = session.scalar(
            select(t.ExperimentAssignment).where(
                t.ExperimentAssignment.cart_id == cart.id, t.ExperimentAssignment.experiment == HOLDOUT
            )
        )
        if existing is not None:
            return existing.variant
        variant = HOLDOUT if self.rng.random() * 100 < holdout_percent else "treatment"
        session.add(t.ExperimentAssignment(store_id=cart.store_id, cart_id=cart.id, experiment=HOLDOUT, variant=variant))
        return variant


def _supersede(session: Session, cart: t.Cart) -> int:
    """A newer abandoned cart replaces the shopper's older sequence in this store."""
    same_shopper = [t.Cart.email == cart.email] if cart.email else []
    if cart.phone:
        same_shopper.append(t.Cart.phone == cart.phone)
    older = select(t.Cart.id).where(t.Cart.store_id == cart.store_id, t.Cart.id != cart.id, or_(*same_shopper))
    result = session.execute(
        update(t.RecoveryMessage)
        .where(t.RecoveryMessage.cart_id.in_(older), t.RecoveryMessage.status == "planned")
        .values(status="cancelled", reason="superseded by a newer cart")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
