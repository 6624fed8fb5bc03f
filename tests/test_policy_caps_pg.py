"""The one-statement caps guard on PostgreSQL (recovery/sending/policy/caps_pg.py), against the transaction path.

Deterministic interleavings: a send to the same shopper committed while the statement waits for the
ledger row locks must make it answer STALE (its snapshot predates that send), never mark the message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.db import make_engine
from recovery.sending.policy import caps, caps_pg
from tests.support.locks import wait_until_lock_wait

AT = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
CAP = timedelta(hours=16)


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _cart_with_messages(engine: Engine, statuses: list[str]) -> tuple[int, list[int]]:
    with engine.begin() as conn:
        store_id = conn.execute(
            t.Store.__table__.insert()
            .values(platform="shopify", domain="caps.myshopify.com", settings={}, timezone="UTC",
                    currency="USD", plan="free")
            .returning(t.Store.id)
        ).scalar_one()
        cart_id = conn.execute(
            t.Cart.__table__.insert().values(
                store_id=store_id, checkout_token="caps-1", email="m@example.com",  # noqa: S106
                currency="USD", subtotal=Decimal("10"), total=Decimal("10"), line_items=[],
                status="abandoned", source="webhook",
                platform_updated_at=AT, last_activity_at=AT, abandon_at=AT, created_at=AT, updated_at=AT,
            ).returning(t.Cart.id)
        ).scalar_one()
        ids = [
            conn.execute(
                t.RecoveryMessage.__table__.insert().values(
                    store_id=store_id, cart_id=cart_id, step=step, channel="email",
                    template="gentle_reminder",
                    due_at=AT, status=status, attempts=0, created_at=AT,
                ).returning(t.RecoveryMessage.id)
            ).scalar_one()
            for step, status in enumerate(statuses, start=1)
        ]
    return store_id, ids


def _guard(engine: Engine, store_id: int, cart_id: int, cap: timedelta | None) -> caps.Guard:
    keys = (f"cart:{cart_id}", "email:maren")
    with engine.begin() as conn:
        rows = caps.ledger(conn, {(store_id, k) for k in keys})
    return caps.Guard(store_id, cart_id, "email", keys, cap, tuple(rows[(store_id, k)].id for k in keys))


def _message(engine: Engine, message_id: int) -> t.RecoveryMessage:
    with Session(engine) as session:
        found = session.get(t.RecoveryMessage, message_id)
        assert found is not None
        return found


def _cart_id(engine: Engine, message_id: int) -> int:
    return _message(engine, message_id).cart_id


def _status(engine: Engine, message_id: int) -> tuple[str, str | None]:
    message = _message(engine, message_id)
    return message.status, message.reason


def _ledger_last(engine: Engine, guard: caps.Guard) -> set[int | None]:
    with engine.connect() as conn:
        ledger = t.ShopperSend
        rows = conn.execute(select(ledger.last_message_id).where(ledger.id.in_(guard.ledger_ids)))
        return set(rows.scalars())


def _at_once(engine: Engine, guard: caps.Guard, message_id: int, at: datetime) -> str | None:
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        with conn.begin():
            return caps_pg.mark_at_once(conn, guard, message_id, at)


def test_marks_and_records_in_one_statement_then_holds_the_next_by_the_shopper_cap(engine: Engine) -> None:
    store_id, (first, second) = _cart_with_messages(engine, ["queued", "queued"])
    guard = _guard(engine, store_id, _cart_id(engine, first), CAP)
    assert _at_once(engine, guard, first, AT) is None
    assert _status(engine, first) == ("sending", None)
    assert _at_once(engine, guard, second, AT + timedelta(hours=1)) == "rescheduled: shopper_cap"
    assert _message(engine, second).due_at == AT + CAP and _ledger_last(engine, guard) == {first}


def test_the_per_cart_cap_cancels_and_a_cancelled_message_is_left_alone(engine: Engine) -> None:
    statuses = ["sent", "sent", "sent", "queued", "cancelled"]
    store_id, (*_, fourth, fifth) = _cart_with_messages(engine, statuses)
    guard = _guard(engine, store_id, _cart_id(engine, fourth), None)
    assert _at_once(engine, guard, fourth, AT) == "cancelled: email_cap_reached"
    assert _at_once(engine, guard, fifth, AT) == "cancelled meanwhile"
    assert _status(engine, fifth) == ("cancelled", None)


def test_a_send_committed_during_the_lock_wait_is_stale_and_left_to_the_transaction(engine: Engine) -> None:
    # Two emails sent; the third and the fourth go at once, with no shopper cap: only the count can stop one.
    store_id, (_, _, third, fourth) = _cart_with_messages(engine, ["sent", "sent", "queued", "queued"])
    guard = _guard(engine, store_id, _cart_id(engine, third), None)
    answers: list[str | None] = []
    with engine.connect() as other:
        other.begin()
        assert caps.mark_sending(other, guard, third, AT) is None  # another worker's send, not committed yet
        waiting = threading.Thread(target=lambda: answers.append(_at_once(engine, guard, fourth, AT)))
        waiting.start()
        # the statement waits for the ledger row locks, its snapshot already taken
        assert wait_until_lock_wait(engine, waiting) == "waiting"
        other.commit()
        waiting.join(timeout=10)
    # Its snapshot still counted two sent: it must not decide on that.
    assert answers == [caps_pg.STALE] and _status(engine, fourth) == ("queued", None)
    with engine.begin() as conn:  # what the sender does next: the transaction path sees the third email
        assert caps.mark_sending(conn, guard, fourth, AT) == "cancelled: email_cap_reached"
    assert _status(engine, third) == ("sending", None) and _ledger_last(engine, guard) == {third}
