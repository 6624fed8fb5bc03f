"""Acknowledged but not yet applied orders, as the last-mile send check sees them.

Why: between an order webhook's 2xx and a worker applying it (relay, Redis, worker: seconds under load,
longer after a lost job) the `orders` table does not know the purchase yet, and reminders would still go
to a shopper who has paid. So the receipt's own INSERT (recovery.intake.deliveries.record_webhook: still one
statement, no extra round trip) stores the order's join keys in indexed columns of `webhook_deliveries`:
checkout token, cart token and digests of the lower-cased email and of the phone's digits. The worker
clears them in the transaction that records the order (and cancels the cart's messages), so at every
instant a purchase is visible either as such a receipt or as an order. The send path consults them twice:
for the whole batch in the pre-send check (recovery.sending.send), and again in the very statement that marks a
message `sending` just before the provider call (recovery.sending.policy.caps_pg, recovery.sending.policy.caps).

A receipt not yet applied holds a matching message (planned again a little later; applying the order then
cancels it); one that was applied without success (rejected payload, dead letter) cancels it. Only receipts
received at or after the cart's last activity count: an older order does not block a newer cart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, or_, select
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.model import strip_token

#: The receipt columns, in the order of OrderKeys' fields.
COLUMNS = ("order_checkout_token", "order_cart_token", "order_email_hash", "order_phone_hash")
#: Receipt columns of a delivery that is no order (the INSERT's parameters).
NO_KEYS: dict[str, str | None] = dict.fromkeys(COLUMNS)
#: How long a message matching an unapplied order waits before it is checked again.
HOLD = timedelta(seconds=60)
TOKEN_MAX = 255


def email_digest(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return hashlib.sha256(b"email:" + email.encode()).hexdigest()[:40] if email else None


def phone_digest(phone: str | None) -> str | None:
    digits = "".join(ch for ch in str(phone or "") if ch.isdigit())
    return hashlib.sha256(b"phone:" + digits.encode()).hexdigest()[:40] if len(digits) >= 5 else None


def _token(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = strip_token(str(value).strip())
    return text if text and len(text) <= TOKEN_MAX else None  # longer: no cart can hold it either


def receipt_columns(checkout_token: Any, cart_token: Any, email: Any, phone: Any) -> dict[str, str | None]:
    """The receipt columns of an order with these (untrusted) values."""
    return dict(zip(COLUMNS, (
        _token(checkout_token), _token(cart_token),
        email_digest(email if isinstance(email, str) else None), phone_digest(phone if isinstance(phone, str) else None),
    ), strict=True))  # fmt: skip


@dataclass(frozen=True)
class OrderKeys:
    """A cart's join keys, for the last-mile check of one message (see caps_pg, caps)."""

    store_id: int
    since: datetime
    checkout_token: str | None
    cart_token: str | None
    email_hash: str | None
    phone_hash: str | None
    #: Until when a held message is planned again.
    hold_until: datetime

    def params(self) -> dict[str, Any]:
        return {"r_store": self.store_id, "r_since": self.since, "r_ck": self.checkout_token,
                "r_ct": self.cart_token, "r_eh": self.email_hash, "r_ph": self.phone_hash}


def keys_for(cart: t.Cart, hold_until: datetime) -> OrderKeys:
    return OrderKeys(cart.store_id, cart.last_activity_at, cart.checkout_token, strip_token(cart.cart_token),
                     email_digest(cart.email), phone_digest(cart.phone), hold_until)


_D = t.WebhookDelivery
#: Whether an order receipt not (successfully) applied matches the keys: one probe of the partial indexes.
MATCH = (
    (_D.store_id == bindparam("r_store"))
    & (_D.received_at >= bindparam("r_since"))
    & or_(_D.order_checkout_token == bindparam("r_ck"), _D.order_cart_token == bindparam("r_ct"),
          _D.order_email_hash == bindparam("r_eh"), _D.order_phone_hash == bindparam("r_ph"))
)
HELD = select(exists().where(MATCH))
#: The same condition as SQL text for statements written as text (caps_pg).
MATCH_SQL = """EXISTS (SELECT FROM webhook_deliveries
    WHERE store_id = :r_store AND received_at >= :r_since
      AND (order_checkout_token = :r_ck OR order_cart_token = :r_ct
           OR order_email_hash = :r_eh OR order_phone_hash = :r_ph))"""


def unapplied_orders(session: Session, carts: Iterable[t.Cart]) -> dict[int, str]:
    """Cart id → "pending" (an order receipt not yet applied) or "failed" (one rejected or dead) for the
    carts such a receipt matches; one query for the batch."""
    carts = [c for c in carts if c.id is not None]
    if not carts:
        return {}
    keyed = {c.id: (strip_token(c.checkout_token), strip_token(c.cart_token), email_digest(c.email),
                    phone_digest(c.phone)) for c in carts}
    values = [set(filter(None, (k[i] for k in keyed.values()))) for i in range(4)]
    conditions = [getattr(_D, col).in_(v) for col, v in zip(COLUMNS, values, strict=True) if v]
    if not conditions:
        return {}
    rows = session.execute(
        select(_D.store_id, _D.received_at, _D.processed_at, *(getattr(_D, col) for col in COLUMNS)).where(
            _D.store_id.in_({c.store_id for c in carts}),
            _D.received_at >= min(c.last_activity_at for c in carts),
            or_(*conditions),
        )
    ).all()
    found: dict[int, str] = {}
    for cart in carts:
        mine = keyed[cart.id]
        for row in rows:
            if row.store_id != cart.store_id or row.received_at < cart.last_activity_at:
                continue
            if any(k is not None and k == row[3 + i] for i, k in enumerate(mine)):
                state = "pending" if row.processed_at is None else "failed"
                if found.get(cart.id) != "pending":  # pending wins: it may still be applied
                    found[cart.id] = state
    return found


def clear(delivery: t.WebhookDelivery) -> None:
    """The order was applied: its receipt no longer stands in for it."""
    for col in COLUMNS:
        setattr(delivery, col, None)


def columns_of(keys: Mapping[str, str | None] | None) -> dict[str, str | None]:
    return {**NO_KEYS, **(keys or {})}


#: How long an order's 2xx waits at most for a hand-over already under way (see `wait_for_hand_overs`).
HAND_OVER_WAIT = 10.0

#: The cart's messages that may be on their way to a provider: `sending`, or `queued` with a mark that may be
#: running right now. FOR SHARE waits for a mark in progress and sees its result (PostgreSQL re-reads the
#: row). The digests are receipts' own (email_digest, phone_digest) in SQL.
_UNDER_WAY = """
SELECT m.id FROM recovery_messages m JOIN carts c ON c.id = m.cart_id
WHERE m.store_id = :store AND m.status IN ('queued', 'sending')
  AND (c.checkout_token = :ck OR c.cart_token = :ct{digests})
"""
_DIGESTS_PG = """
       OR left(encode(sha256(convert_to('email:' || lower(btrim(c.email)), 'UTF8')), 'hex'), 40) = :eh
       OR left(encode(sha256(convert_to('phone:' || regexp_replace(c.phone, '[^0-9]', '', 'g'), 'UTF8')),
                      'hex'), 40) = :ph"""


def wait_for_hand_overs(engine: Any, delivery_pk: int, timeout: float = HAND_OVER_WAIT) -> int:
    """Called after an order's receipt is committed and before its 2xx: wait while a message of that cart is
    being handed to its provider. The receipt holds every message marked later (the mark re-checks receipts
    in its own statement); one marked just before it may still be on its way, and its provider must have it
    before the purchase is acknowledged, or a reminder would reach the shopper after the shop said "paid".
    Returns how many such messages there were (0: nothing waited). Bounded by `timeout`."""
    import time

    from sqlalchemy import text

    with engine.begin() as conn:
        row = conn.execute(text(
            "SELECT store_id, order_checkout_token, order_cart_token, order_email_hash, order_phone_hash"
            " FROM webhook_deliveries WHERE id = :id"), {"id": delivery_pk}).first()  # fmt: skip
        if row is None or not any(row[1:]):
            return 0
        params = {"store": row[0], "ck": row[1], "ct": row[2], "eh": row[3], "ph": row[4]}
        if engine.dialect.name == "postgresql":
            under_way = text(_UNDER_WAY.format(digests=_DIGESTS_PG) + " FOR SHARE OF m")
            ids = [r[0] for r in conn.execute(under_way, params)]
        else:  # SQLite (one writer at a time): the store's few messages under way, matched here
            ids = [r[0] for r in conn.execute(text(
                "SELECT m.id, c.checkout_token, c.cart_token, c.email, c.phone FROM recovery_messages m"
                " JOIN carts c ON c.id = m.cart_id WHERE m.store_id = :store AND m.status IN ('queued', 'sending')"),
                params) if (r[1] and r[1] == row[1]) or (r[2] and strip_token(r[2]) == row[2])
                or (row[3] and email_digest(r[3]) == row[3]) or (row[4] and phone_digest(r[4]) == row[4])]
    if not ids:
        return 0
    # Until none is `sending`, twice in a row: a mark that read the receipts before this receipt's commit and
    # wrote after the look above (milliseconds, one statement) shows by the second look.
    deadline, clean = time.monotonic() + timeout, 0
    waiting = text("SELECT count(*) FROM recovery_messages WHERE id IN :ids AND status = 'sending'").bindparams(
        bindparam("ids", expanding=True))
    while clean < 2 and time.monotonic() < deadline:
        with engine.connect() as conn:
            clean = 0 if conn.execute(waiting, {"ids": ids}).scalar_one() else clean + 1
        if clean < 2:
            time.sleep(0.05)
    return len(ids)
