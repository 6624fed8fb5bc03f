"""Frequency caps: per cart (one SMS, three emails) and per shopper across channels (default one per 16 h).

The bulk pre-send check applies them with a few queries per batch; `hold` re-checks them in the very
transaction that marks a message `sending`, under row locks on the shopper's ledger rows, so two send
workers can never both pass the cap for the same shopper.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from recovery import tables as t
from recovery.db import insert_for

MAX_PER_CART = {"sms": 1, "email": 3}
#: SMS only within 48 h of abandonment (CTIA-style cart reminders, market.md §1c).
SMS_MAX_AGE = timedelta(hours=48)
#: Real time allowed between "due" and the hand-over (dispatcher poll, queue): a step due at exactly
#: 48 h is still on time.
DISPATCH_LAG = timedelta(minutes=2)
SENT = ("sending", "sent")

_CAP = re.compile(r"^\s*1\s*/\s*(\S+)\s*$")


def parse_cap(text: str) -> int | None:
    """'1/16h' → 57600 seconds between messages to one shopper; 'off' → None."""
    from recovery.store_settings import SettingError, parse_duration

    if str(text).strip().lower() in {"off", "none", "0"}:
        return None
    match = _CAP.match(str(text))
    if not match:
        raise SettingError(f"{text!r} is not a cap such as 1/16h (one message per 16 hours) or off")
    seconds = parse_duration(match.group(1))
    if seconds <= 0:
        raise SettingError("the cap's period must be longer than zero")
    return seconds


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


def hold(conn: Connection, guard: Guard, message_id: int, at: datetime) -> str | None:
    """Lock the shopper's ledger rows and re-check the caps; None if the message may be marked sending.

    A message over a cap is rescheduled (shopper cap) or cancelled (per-cart cap) right here.
    """
    rows = [{"store_id": guard.store_id, "shopper_key": key} for key in guard.keys]
    conn.execute(insert_for(conn.dialect.name)(t.ShopperSend).values(rows).on_conflict_do_nothing())
    ledger = conn.execute(
        select(t.ShopperSend.last_sent_at, t.ShopperSend.last_message_id)
        .where(t.ShopperSend.store_id == guard.store_id, t.ShopperSend.shopper_key.in_(guard.keys))
        .order_by(t.ShopperSend.shopper_key)
        .with_for_update()
    ).all()
    limit = MAX_PER_CART.get(guard.channel)
    if limit is not None:
        sent = conn.execute(
            select(func.count()).where(
                t.RecoveryMessage.cart_id == guard.cart_id, t.RecoveryMessage.channel == guard.channel,
                t.RecoveryMessage.status.in_(SENT), t.RecoveryMessage.id != message_id,
            )
        ).scalar_one()
        if sent >= limit:
            return _settle(conn, message_id, "cancelled", f"{guard.channel}_cap_reached")
    last = max((r.last_sent_at for r in ledger if r.last_sent_at and r.last_message_id != message_id), default=None)
    if guard.cap is not None and last is not None and last + guard.cap > at:
        return _settle(conn, message_id, "planned", "shopper_cap", due_at=last + guard.cap)
    return None


def record(conn: Connection, guard: Guard, message_id: int, at: datetime) -> None:
    conn.execute(
        update(t.ShopperSend)
        .where(t.ShopperSend.store_id == guard.store_id, t.ShopperSend.shopper_key.in_(guard.keys))
        .values(last_sent_at=at, last_message_id=message_id)
    )


def _settle(conn: Connection, message_id: int, status: str, reason: str, due_at: datetime | None = None) -> str:
    values: dict[str, object] = {"status": status, "reason": reason if status == "cancelled" else f"rescheduled: {reason}"}
    if due_at is not None:
        values.update(due_at=due_at, claimed_at=None)
    done = conn.execute(
        update(t.RecoveryMessage).where(t.RecoveryMessage.id == message_id, t.RecoveryMessage.status == "queued").values(**values)
    ).rowcount
    if not done:
        return "cancelled meanwhile"
    return f"cancelled: {reason}" if status == "cancelled" else f"rescheduled: {reason}"


def ledger(conn_or_session, store_keys: set[tuple[int, str]]) -> dict[tuple[int, str], tuple[datetime, int | None]]:  # type: ignore[no-untyped-def]
    """(store, key) → last hand-over and its message, for the bulk check (no locks: `hold` is the guard)."""
    if not store_keys:
        return {}
    rows = conn_or_session.execute(
        select(
            t.ShopperSend.store_id, t.ShopperSend.shopper_key, t.ShopperSend.last_sent_at, t.ShopperSend.last_message_id
        ).where(
            t.ShopperSend.store_id.in_({s for s, _ in store_keys}),
            t.ShopperSend.shopper_key.in_({k for _, k in store_keys}),
        )
    ).all()
    return {(r.store_id, r.shopper_key): (r.last_sent_at, r.last_message_id) for r in rows if r.last_sent_at is not None}


def sent_counts(session, cart_ids: set[int]) -> dict[tuple[int, str], int]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        select(t.RecoveryMessage.cart_id, t.RecoveryMessage.channel, func.count())
        .where(t.RecoveryMessage.cart_id.in_(cart_ids), t.RecoveryMessage.status.in_(SENT))
        .group_by(t.RecoveryMessage.cart_id, t.RecoveryMessage.channel)
    ).all()
    return {(cart_id, channel): count for cart_id, channel, count in rows}
