"""Logged first-step send decisions and their outcomes, read back for training and evaluation.

The label is "ordered within the attribution window after abandonment", the same for treated and
holdout carts (an order with no click counts too): what a message changes is whether the shopper
orders at all, not which order gets credited to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.config.store_settings import effective


@dataclass(frozen=True)
class LoggedSend:
    store_id: int
    cart_id: int
    features: dict[str, Any]
    candidates: list[float]
    chosen: float
    greedy: float
    propensity: float
    model_version: str
    ordered: bool


def ordered_within_window(session: Session, cart_ids: list[int]) -> dict[int, bool]:
    """Per abandoned cart: an order (not cancelled) for it placed within its store's window after abandonment."""
    rows = session.execute(
        select(t.Cart.id, t.Cart.abandoned_at, t.Store.settings, t.Order.placed_at)
        .join(t.Store, t.Store.id == t.Cart.store_id)
        .outerjoin(t.Order, (t.Order.cart_id == t.Cart.id) & t.Order.cancelled_at.is_(None))
        .where(t.Cart.id.in_(cart_ids), t.Cart.abandoned_at.is_not(None))
    ).all()
    out = {cart_id: False for cart_id in cart_ids}
    for cart_id, abandoned_at, settings, placed_at in rows:
        window = timedelta(seconds=float(effective(settings or {})["attribution_window"]))
        if placed_at is not None and abandoned_at <= placed_at <= abandoned_at + window:
            out[cart_id] = True
    return out


def logged_sends(session: Session, store_id: int | None = None, *, now: Any = None) -> list[LoggedSend]:
    """Every logged decision (of one store, or all), labelled. With `now`, decisions whose window
    is still open are left out: their label is not known yet."""
    query = select(t.SendDecision, t.Store.settings).join(t.Store, t.Store.id == t.SendDecision.store_id)
    if store_id is not None:
        query = query.where(t.SendDecision.store_id == store_id)
    rows = session.execute(query.order_by(t.SendDecision.id)).all()
    if now is not None:
        rows = [
            (d, s) for d, s in rows
            if d.decided_at + timedelta(seconds=float(effective(s or {})["attribution_window"])) <= now
        ]  # fmt: skip
    labels = ordered_within_window(session, [d.cart_id for d, _ in rows])
    return [
        LoggedSend(d.store_id, d.cart_id, dict(d.features), [float(c) for c in d.candidates], d.chosen,
                   d.greedy, d.propensity, d.model_version, labels[d.cart_id])
        for d, _ in rows
    ]  # fmt: skip
