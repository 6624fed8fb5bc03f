"""Web push subscriptions captured by the storefront: one row per browser endpoint."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.tables import utcnow


def save_subscription(
    session: Session,
    store_id: int,
    endpoint: str,
    keys: dict[str, Any],
    sid: str | None = None,
    cart_id: int | None = None,
) -> t.PushSubscription:
    """Insert or refresh by endpoint: a browser re-subscribing gets new keys for the same endpoint."""
    row = session.scalars(
        select(t.PushSubscription).where(t.PushSubscription.endpoint == endpoint).with_for_update()
    ).first()
    if row is None:
        row = t.PushSubscription(store_id=store_id, endpoint=endpoint, created_at=utcnow())
        session.add(row)
    row.store_id, row.keys = store_id, {"p256dh": keys["p256dh"], "auth": keys["auth"]}
    row.sid = sid or row.sid
    row.cart_id = cart_id or row.cart_id
    session.flush()
    return row


def delete_subscription(session: Session, endpoint: str) -> int:
    """The push service answered 404/410: that endpoint will never deliver again."""
    result = session.execute(delete(t.PushSubscription).where(t.PushSubscription.endpoint == endpoint))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def subscription_for_cart(session: Session, cart_id: int) -> dict[str, Any] | None:
    """The newest subscription for a cart as the PushSubscription JSON the channel sends to."""
    row = session.scalars(
        select(t.PushSubscription)
        .where(t.PushSubscription.cart_id == cart_id)
        .order_by(t.PushSubscription.id.desc())
    ).first()
    return {"endpoint": row.endpoint, "keys": dict(row.keys)} if row else None


def carts_with_subscription(session: Session, cart_ids: Collection[int]) -> set[int]:
    """Which of these carts have a push subscription: one query for a batch (planning, pre-send checks)."""
    if not cart_ids:
        return set()
    rows = session.scalars(
        select(t.PushSubscription.cart_id).where(t.PushSubscription.cart_id.in_(list(cart_ids))).distinct()
    )
    return {cart_id for cart_id in rows if cart_id is not None}
