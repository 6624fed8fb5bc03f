"""Daily figures (recovery/measure/figures.py) stay equal to a recount from the base tables, through the real loop:
webhooks, abandonment, sends with a duplicate job and a transient failure, opens, clicks, a duplicate order."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.consent import engagement
from recovery.measure import figures
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel, TransientSendError
from recovery.messages.links import LinkTarget
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, claim, daytime, messages, now, set_store
from tests.support import shopify

def other_checkout() -> dict[str, object]:
    """A second shopper's checkout (another email, no phone, another customer)."""
    payload = shopify.load("checkouts_update")
    payload.update(id=37214586900999, token="0b9e11d4c7aa43f08c5e2d6a7f3b9c21", cart_token="c2-other-cart-token",
                   email="ines.marlow@example.com", phone=None, sms_marketing_phone=None)  # fmt: skip
    for key in ("shipping_address", "billing_address"):
        if payload.get(key):
            payload[key] = {**payload[key], "phone": None}
    payload["customer"] = {**payload["customer"], "id": 7902461835999, "email": "ines.marlow@example.com", "phone": None}
    return payload


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, tmp_path), channels={"email": fake, "sms": fake, "push": fake}, seed=3)
    store_id = add_store(runtime)
    with runtime.sessions.begin() as session:  # local days that are not UTC days
        session.get(t.Store, store_id).timezone = "America/New_York"  # type: ignore[union-attr]
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


def deliver(rt: Runtime, client, name: str, payload: dict[str, object] | None = None) -> None:  # type: ignore[no-untyped-def]
    shopify.post(client, name, payload=payload or shopify.load(name))
    drain(rt)


def stored(rt: Runtime) -> list[tuple]:  # type: ignore[type-arg]
    with rt.sessions() as session:
        rows = session.scalars(select(t.DailyFigure)).all()
        return sorted(_key(r.__dict__) for r in rows)


def recounted(rt: Runtime) -> list[tuple]:  # type: ignore[type-arg]
    with rt.sessions() as session:
        store = session.scalars(select(t.Store)).one()
        tz = figures.zone(store.timezone)
        days = {c.abandoned_at.astimezone(tz).date() for c in session.scalars(select(t.Cart)) if c.abandoned_at}
        return sorted(_key(r) for r in figures.count_directly(session, store.id, days, tz))


def _key(row: dict) -> tuple:  # type: ignore[type-arg]
    names = ("day", "step", "channel", "currency", *figures.COUNTS, *figures.CART_COUNTS)
    return (*(row[n] for n in names), Decimal(row["recovered_revenue"]).normalize())


def refresh(rt: Runtime) -> int:
    with rt.sessions.begin() as session:
        return figures.refresh(session)


def test_figures_equal_a_recount_after_sends_retries_opens_and_orders(rt: Runtime, fake: FakeChannel) -> None:
    client = create_app(runtime=rt).test_client()
    deliver(rt, client, "checkouts_update")
    deliver(rt, client, "checkouts_update", other_checkout())
    at = now() + 2 * HOUR
    first, second = abandon_all(rt, at)
    assert refresh(rt) >= 1 and stored(rt) == recounted(rt)
    planned = [r for r in stored(rt) if r[1] > 0]
    assert sum(r[4] for r in planned) == len(messages(rt)) > 2

    claimed = claim(rt, at + 5 * HOUR)
    by_cart = {m.cart_id: m.id for m in messages(rt) if m.id in claimed}
    # a job delivered twice sends once; a transient provider failure is retried and then sent
    assert rt.sender.send(rt.sessions, by_cart[first]) == "sent"
    assert rt.sender.send(rt.sessions, by_cart[first]) == "nothing to do"
    fake.fail_with = TransientSendError("503 try later")
    with pytest.raises(TransientSendError):
        rt.sender.send(rt.sessions, by_cart[second])
    refresh(rt)
    assert stored(rt) == recounted(rt)
    fake.fail_with = None
    assert rt.sender.send(rt.sessions, by_cart[second]) == "sent"
    # an open and a click, each recorded twice (pixel reloaded, link clicked again)
    for _ in range(2):
        with rt.sessions.begin() as session:
            engagement.record_open(session, LinkTarget(by_cart[second], second))
            engagement.record_click(session, LinkTarget(by_cart[first], first))
    # the order arrives twice (orders/create and a redelivery under another id)
    stamp = now().isoformat()
    order = {**shopify.load("orders_create"), "created_at": stamp, "processed_at": stamp}
    for _ in range(2):
        shopify.post(client, "orders_create", payload=order)
        drain(rt)
    assert refresh(rt) >= 1
    assert refresh(rt) == 0  # nothing changed since: nothing recounted
    rows = stored(rt)
    assert rows == recounted(rt)
    step_one = [r for r in rows if r[1] == 1]
    totals = [sum(r[i] for r in step_one) for i in range(4, 10)]
    assert totals == [2, 2, 2, 2, 1, 1]  # planned, sent, delivered (opened), opened, clicked, ordered
    [cart_row] = [r for r in rows if r[1] == 0]
    assert cart_row[10:14] == (2, 1, 2, 1) and cart_row[-1] == Decimal("132.47")  # abandoned, recovered, treated


def test_a_recount_is_idempotent_and_a_rolled_back_change_leaves_no_mark(rt: Runtime) -> None:
    client = create_app(runtime=rt).test_client()
    deliver(rt, client, "checkouts_update")
    [cart_id] = abandon_all(rt, now() + 2 * HOUR)
    refresh(rt)
    before = stored(rt)
    with rt.sessions.begin() as session:  # a retried job marks the same day again: the recount is the same
        session.add(t.FigureMark(store_id=session.get(t.Cart, cart_id).store_id, at=now() + 2 * HOUR))  # type: ignore[union-attr]
    assert refresh(rt) == 1 and stored(rt) == before
    with pytest.raises(RuntimeError), rt.sessions.begin() as session:
        session.get(t.Cart, cart_id).status = "recovered"  # type: ignore[union-attr]
        session.flush()
        raise RuntimeError("the job failed before commit")
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(t.FigureMark)) == 0
    assert stored(rt) == before == recounted(rt)


def test_the_bulk_rebuild_counts_what_the_recount_counts(pg_url: str, tmp_path: Path, fake: FakeChannel) -> None:
    from recovery.measure.figures_bulk import rebuild_all

    runtime = build_runtime(make_settings(pg_url, tmp_path), channels={"email": fake, "sms": fake, "push": fake}, seed=3)
    try:
        store_id = add_store(runtime)
        with runtime.sessions.begin() as session:
            session.get(t.Store, store_id).timezone = "Asia/Kolkata"  # type: ignore[union-attr]
        set_store(runtime, holdout_percent=0)
        client = create_app(runtime=runtime).test_client()
        deliver(runtime, client, "checkouts_update")
        deliver(runtime, client, "checkouts_update", other_checkout())
        at = daytime(10, "Asia/Kolkata")  # its first reminder then comes due in the store's day, at any hour we run
        first, _ = abandon_all(runtime, at)
        [claimed] = [m.id for m in messages(runtime, first) if m.id in claim(runtime, at + 5 * HOUR)]
        assert runtime.sender.send(runtime.sessions, claimed) == "sent"
        stamp = now().isoformat()
        shopify.post(client, "orders_create", payload={**shopify.load("orders_create"), "created_at": stamp, "processed_at": stamp})
        drain(runtime)
        refresh(runtime)
        counted = stored(runtime)
        with runtime.sessions.begin() as session:
            assert rebuild_all(session) == len(counted)
        assert stored(runtime) == counted == recounted(runtime)
    finally:
        runtime.close()


def test_every_table_that_moves_a_figure_keeps_its_triggers_at_head(database_url: str) -> None:
    # SQLite's batch migrations copy a table to change it and drop its triggers: a later migration must
    # re-create them (see migration 0118), or the daily figures silently stop following that table.
    from sqlalchemy import text

    from recovery.storage.db import make_engine

    engine = make_engine(database_url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")).all()
        else:
            rows = conn.execute(text("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal")).all()
    engine.dispose()
    tables = {table for table, name in rows if name.startswith("figures_mark")}
    assert tables == {"recovery_messages", "orders", "experiment_assignments", "carts"}


def test_a_message_marks_its_day_when_a_figure_can_move_not_on_every_status(rt: Runtime) -> None:
    """Claiming and the `sending` mark move no figure (migration 0131): no mark; the hand-over (`sent_at`)
    leaves one, not one per cart side of the change; moving a message to another cart marks both carts."""
    client = create_app(runtime=rt).test_client()
    deliver(rt, client, "checkouts_update")
    deliver(rt, client, "checkouts_update", other_checkout())
    first, second = abandon_all(rt, now() + 2 * HOUR)
    refresh(rt)

    def marks() -> int:
        with rt.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(t.FigureMark)) or 0)

    [message, *_] = messages(rt, first)
    with rt.sessions.begin() as session:
        row = session.get(t.RecoveryMessage, message.id)
        row.status, row.claimed_at = "queued", now()  # type: ignore[union-attr]
    with rt.sessions.begin() as session:
        session.get(t.RecoveryMessage, message.id).status = "sending"  # type: ignore[union-attr]
    assert marks() == 0
    with rt.sessions.begin() as session:
        row = session.get(t.RecoveryMessage, message.id)
        row.status, row.sent_at = "sent", now()  # type: ignore[union-attr]
    assert marks() == 1
    with rt.sessions.begin() as session:
        row = session.get(t.RecoveryMessage, message.id)
        row.cart_id, row.step = second, 99  # type: ignore[union-attr]
    assert marks() == 3
    refresh(rt)
    assert stored(rt) == recounted(rt)
