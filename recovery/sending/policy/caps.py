"""Frequency caps: per cart (one SMS, three emails) and per shopper across channels (default one per 16 h).

The bulk pre-send check applies them with a few queries per batch (and makes the batch's missing ledger
rows); `mark_sending` re-checks them in the very transaction that marks a message `sending`, under row
locks on the shopper's ledger rows, so two send workers can never both pass the cap for the same shopper
(caps_pg.py does the same in one statement on PostgreSQL).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from recovery.intake import receipts
from recovery.storage import tables as t
from recovery.storage.db import insert_for

MAX_PER_CART = {"sms": 1, "email": 3}
#: SMS only within 48 h of abandonment (CTIA-style cart reminders, market.md §1c).
SMS_MAX_AGE = timedelta(hours=48)
#: Real time allowed between "due" and the hand-over (dispatcher poll, queue): a step due at exactly
#: 48 h is still on time.
DISPATCH_LAG = timedelta(minutes=2)
SENT = ("sending", "sent")

def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:40]


def shopper_keys(cart: t.Cart) -> tuple[str, ...]:
    """The ledger keys of a cart's shopper: the cart itself and each identity (addresses only as hashes)."""
    keys = [f"cart:{cart.id}"]
    if cart.customer_id:
        keys.append(f"customer:{cart.customer_id}")
    if cart.email:
        keys.append(f"email:{_digest(cart.email.strip().lower())}")
    if cart.phone:
        keys.append(f"phone:{_digest(cart.phone.strip())}")
    return tuple(sorted(keys))  # one lock order for everyone: no deadlock between two workers


@dataclass(frozen=True)
class Guard:
    """What the sending transaction re-checks for one message."""

    store_id: int
    cart_id: int
    channel: str
    keys: tuple[str, ...]
    cap: timedelta | None
    #: The primary keys of its ledger rows (`ledger` made them). Locked by primary key, the plan cannot
    #: turn into a scan of the store's whole ledger, as (store_id, shopper_key IN ...) did on stale
    #: statistics.
    ledger_ids: tuple[int, ...] = ()
    #: The cart's order join keys: an order receipt not yet applied holds the send (recovery/intake/receipts.py).
    receipt: Any = None
    #: The per-cart caps (one SMS, three emails) bound the abandoned-cart sequence; a triggered flow's message
    #: (recovery/flows) has its own once-per-period key instead, and the shopper cap like any message.
    per_cart: bool = True


@dataclass(frozen=True)
class LedgerRow:
    id: int
    last_sent_at: datetime | None
    last_message_id: int | None


@cache
def _insert_ledger(dialect: str) -> Any:
    # Built once, run as one multi-row INSERT for the batch's rows (SQLAlchemy's "insertmanyvalues").
    row = t.ShopperSend.__table__
    insert = insert_for(dialect)(row).on_conflict_do_nothing()
    return insert.returning(row.c.id, row.c.store_id, row.c.shopper_key)


def ledger(conn_or_session: Any, store_keys: set[tuple[int, str]]) -> dict[tuple[int, str], LedgerRow]:
    """(store, key) → its ledger row, made now if missing: one INSERT for the batch, and one SELECT per
    store for the keys that were there already. For the bulk check: no locks, `mark_sending` is the guard.

    Rows are never deleted (only with their store), so a row made here is there for the send. Sorted:
    two batches inserting the same new keys wait for each other in one order, never in a cycle.
    """
    wanted = sorted(store_keys)
    if not wanted:
        return {}
    dialect = getattr(conn_or_session, "dialect", None) or conn_or_session.get_bind().dialect  # a Session's
    made = conn_or_session.execute(
        _insert_ledger(dialect.name), [{"store_id": s, "shopper_key": k} for s, k in wanted]
    )
    rows = {(r.store_id, r.shopper_key): LedgerRow(r.id, None, None) for r in made}
    row = t.ShopperSend
    for store_id in sorted({s for s, k in wanted if (s, k) not in rows}):  # those that were there already
        old = [k for s, k in wanted if s == store_id and (s, k) not in rows]
        found = conn_or_session.execute(
            select(row.id, row.shopper_key, row.last_sent_at, row.last_message_id)
            .where(row.store_id == store_id, row.shopper_key.in_(old))
        )
        for r in found:
            rows[(store_id, r.shopper_key)] = LedgerRow(r.id, r.last_sent_at, r.last_message_id)
    return rows


def _sent_to_cart(exclude: Any) -> Any:
    other = aliased(t.RecoveryMessage)
    # The cart's rows by its index only (status in the WHERE may draw in the status index: caps_pg.py).
    return (
        select(func.count().filter(other.channel == bindparam("on_channel"), other.status.in_(SENT),
                                   other.flow == "cart", other.id != exclude))  # the sequence's own
        .where(other.cart_id == bindparam("of_cart"))
        .scalar_subquery()
    )


# Built once: building these per message cost more CPU than running them.
_LEDGER = select(t.ShopperSend.id, t.ShopperSend.last_sent_at, t.ShopperSend.last_message_id)
_LOCK_BY_ID = (
    _LEDGER.where(t.ShopperSend.id.in_(bindparam("ledger_ids", expanding=True)))
    .order_by(t.ShopperSend.shopper_key)  # one lock order for everyone: no deadlock between two workers
    .with_for_update()
)
_LOCK_BY_KEY = (
    _LEDGER.where(t.ShopperSend.store_id == bindparam("store_id"),
                  t.ShopperSend.shopper_key.in_(bindparam("keys", expanding=True)))
    .order_by(t.ShopperSend.shopper_key)
    .with_for_update()
)
_MESSAGE = t.RecoveryMessage
_MARK_VALUES = {"status": "sending", "claimed_at": bindparam("at"), "attempts": _MESSAGE.attempts + 1}
#: queued → sending; the guarded form also re-counts the cart's sends, after the locks (a fresh snapshot).
MARK = (
    update(_MESSAGE).where(_MESSAGE.id == bindparam("message_id"), _MESSAGE.status == "queued").values(**_MARK_VALUES)
)
_MARK_UNDER_CART_CAP = (
    update(_MESSAGE)
    .where(_MESSAGE.id == bindparam("message_id"), _MESSAGE.status == "queued",
           _sent_to_cart(bindparam("message_id")) < bindparam("limit"))
    .values(**_MARK_VALUES)
)
_COUNT = select(_sent_to_cart(bindparam("message_id")))
_STATUS = select(_MESSAGE.status).where(_MESSAGE.id == bindparam("message_id"))
_RECORD = (
    update(t.ShopperSend)
    .where(t.ShopperSend.id.in_(bindparam("ids", expanding=True)))
    .values(last_sent_at=bindparam("at"), last_message_id=bindparam("message_id"))
)


def mark_sending(conn: Connection, guard: Guard, message_id: int, at: datetime) -> str | None:
    """Lock the shopper's ledger rows, re-check the caps, mark the message `sending` and record the send in
    the ledger; None if marked. Over a cap, the message is rescheduled (shopper cap) or cancelled
    (per-cart cap) right here instead. The caller's transaction commits all of it at once.

    Every statement after the lock sees what the locks' previous holders committed (READ COMMITTED takes
    a snapshot per statement), so no two workers both pass a cap. PostgreSQL does all of it in one
    statement instead (caps_pg.py), and comes here only when that one cannot tell.
    """
    if guard.ledger_ids:
        ledger_rows = conn.execute(_LOCK_BY_ID, {"ledger_ids": list(guard.ledger_ids)}).all()
    else:  # rows not made beforehand (`ledger`): make them, then lock them all
        ledger(conn, {(guard.store_id, key) for key in guard.keys})
        ledger_rows = conn.execute(_LOCK_BY_KEY, {"store_id": guard.store_id, "keys": list(guard.keys)}).all()
    if guard.receipt is not None and conn.execute(receipts.HELD, guard.receipt.params()).scalar():
        # An order was acknowledged for this shopper and is not applied yet: not now (recovery/intake/receipts.py).
        return settle(conn, message_id, "planned", "order_receipt_pending", due_at=guard.receipt.hold_until)
    limit = MAX_PER_CART.get(guard.channel) if guard.per_cart else None
    params = {"message_id": message_id, "of_cart": guard.cart_id, "on_channel": guard.channel, "at": at,
              "limit": limit}
    last = max(
        (r.last_sent_at for r in ledger_rows if r.last_sent_at and r.last_message_id != message_id), default=None
    )
    if guard.cap is not None and last is not None and last + guard.cap > at:
        if limit is not None and conn.execute(_COUNT, params).scalar_one() >= limit:  # the cart's cap first
            return settle(conn, message_id, "cancelled", f"{guard.channel}_cap_reached")
        return settle(conn, message_id, "planned", "shopper_cap", due_at=last + guard.cap)
    if not conn.execute(MARK if limit is None else _MARK_UNDER_CART_CAP, params).rowcount:
        if conn.execute(_STATUS, params).scalar() != "queued":
            return "cancelled meanwhile"
        return settle(conn, message_id, "cancelled", f"{guard.channel}_cap_reached")
    conn.execute(_RECORD, {"ids": [r.id for r in ledger_rows], "at": at, "message_id": message_id})
    return None


def settle(conn: Connection, message_id: int, status: str, reason: str, due_at: datetime | None = None) -> str:
    """A queued message that may not go now: cancelled, or planned again at `due_at`; the outcome's text."""
    values: dict[str, object] = {"status": status, "reason": reason if status == "cancelled" else f"rescheduled: {reason}"}
    if due_at is not None:
        values.update(due_at=due_at, claimed_at=None)
    done = conn.execute(
        update(t.RecoveryMessage).where(t.RecoveryMessage.id == message_id, t.RecoveryMessage.status == "queued").values(**values)
    ).rowcount
    if not done:
        return "cancelled meanwhile"
    return f"cancelled: {reason}" if status == "cancelled" else f"rescheduled: {reason}"

