"""One lock order (recovery/storage/locks.py) on real PostgreSQL: intake and abandonment running side by side, each
paused at the moment the old code deadlocked, never deadlock. Threads synchronized with events and
pg_stat_activity polling; no sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import connectors
from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.intake import deliveries as intake
from recovery.storage import tables as t
from recovery.sequence.abandonment import Abandoner
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import now, set_store
from tests.support import shopify

TIMEOUT = 20.0


@pytest.fixture
def rt(pg_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(pg_url, tmp_path), seed=3)
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


def deadlocks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")).scalar_one())


def wait_until_blocked(engine: Engine, pid: int) -> None:
    """Poll pg_stat_activity until backend `pid` waits for a lock (a heavyweight lock, not I/O)."""
    with engine.connect() as conn:
        for _ in range(200_000):
            state = conn.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar()
            conn.rollback()
            if state == "Lock":
                return
    raise AssertionError(f"backend {pid} never waited for a lock")


class Worker(threading.Thread):
    """Runs `work(session)` in one transaction on its own connection; keeps the backend pid and any error,
    and flushes the backend's statistics at the end (pg_stat_database counts deadlocks per backend)."""

    def __init__(self, engine: Engine, work: Callable[[Session], Any]) -> None:
        super().__init__(daemon=True)
        self.engine, self.work = engine, work
        self.pid: int | None = None
        self.started_work = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        with self.engine.connect() as conn:
            self.pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.commit()
            try:
                with Session(bind=conn) as session:
                    self.started_work.set()
                    self.work(session)
                    session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc
                conn.rollback()
            finally:
                self.started_work.set()
                conn.execute(text("SELECT pg_stat_force_next_flush()"))
                conn.commit()


class PausingAbandoner(Abandoner):
    """Stops after its carts are locked, before it records their experiment assignments (which takes a key
    share lock on the store row, through the foreign key)."""

    carts_locked: threading.Event
    go_on: threading.Event

    def _assign(self, *args: Any, **kwargs: Any) -> Any:
        self.carts_locked.set()
        assert self.go_on.wait(TIMEOUT)
        return super()._assign(*args, **kwargs)


def test_intake_and_abandonment_side_by_side_never_deadlock(rt: Runtime) -> None:
    client = create_app(runtime=rt).test_client()
    checkout = shopify.load("checkouts_update")
    shopify.post(client, "checkouts_update", payload=checkout)
    drain(rt)
    # A newer state of the same checkout, acknowledged and waiting for a worker.
    shopify.post(client, "checkouts_update", payload={**checkout, "updated_at": now().isoformat(), "note": "gift"})
    with rt.sessions() as session:
        [pending] = session.scalars(select(t.WebhookDelivery.id).where(t.WebhookDelivery.processed_at.is_(None))).all()
    abandoner = PausingAbandoner(rt.abandoner.send_time, rt.abandoner.timing, rt.abandoner.rng)
    abandoner.carts_locked, abandoner.go_on = threading.Event(), threading.Event()
    before = deadlocks(rt.engine)

    abandoning = Worker(rt.engine, lambda s: abandoner.run(s, now() + timedelta(hours=2)))
    applying = Worker(rt.engine, lambda s: intake.process_delivery(s, pending, connectors.normalize, rt.timing))
    abandoning.start()
    assert abandoner.carts_locked.wait(TIMEOUT)  # the abandoner holds the cart
    applying.start()
    assert applying.started_work.wait(TIMEOUT)
    assert applying.pid is not None
    wait_until_blocked(rt.engine, applying.pid)  # intake holds its store lock and waits for the cart
    # Meanwhile a webhook for the same store is received: its INSERT (foreign key: KEY SHARE on the store)
    # must not queue behind intake's store lock, which itself waits for the abandoner's cart.
    answers: list[int] = []
    receipt = threading.Thread(target=lambda: answers.append(
        shopify.post(client, "checkouts_update", payload={**checkout, "token": "another-checkout"}).status_code))
    receipt.start()
    receipt.join(TIMEOUT / 2)
    received_while_blocked = not receipt.is_alive()
    abandoner.go_on.set()  # the abandoner goes on to its assignments (store key share) and commits
    abandoning.join(TIMEOUT)
    applying.join(TIMEOUT)
    receipt.join(TIMEOUT)
    assert received_while_blocked and answers == [200], "a webhook receipt waited for a cart lock"
    assert not abandoning.is_alive() and not applying.is_alive()
    assert abandoning.error is None and applying.error is None, (abandoning.error, applying.error)
    assert deadlocks(rt.engine) == before
    with rt.sessions() as session:
        assert session.get(t.WebhookDelivery, pending).processed_at is not None  # type: ignore[union-attr]
        assert session.scalars(select(t.ExperimentAssignment.variant)).all() == ["treatment"]


def wait_until_any_blocked(engine: Engine) -> None:
    """Poll until some backend of this (private) test database waits for a lock."""
    with engine.connect() as conn:
        for _ in range(200_000):
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar()  # fmt: skip
            conn.rollback()
            if waiting:
                return
    raise AssertionError("no backend ever waited for a lock")


def test_an_order_applied_while_its_messages_are_checked_never_deadlocks(rt: Runtime) -> None:
    from tests.loop_helpers import abandon_all, claim

    client = create_app(runtime=rt).test_client()
    checkout = shopify.load("checkouts_update")
    shopify.post(client, "checkouts_update", payload=checkout)
    drain(rt)
    at = now() + timedelta(hours=2)
    abandon_all(rt, at)
    claimed = claim(rt, at + timedelta(hours=100))
    assert claimed
    stamp = now().isoformat()
    shopify.post(client, "orders_create", payload={**shopify.load("orders_create"), "created_at": stamp, "processed_at": stamp})
    with rt.sessions() as session:
        [order] = session.scalars(select(t.WebhookDelivery.id).where(t.WebhookDelivery.processed_at.is_(None))).all()
    store_locked, go_on = threading.Event(), threading.Event()

    def pausing_normalize(platform: str, topic: str, payload: Any) -> Any:  # runs under the store lock
        store_locked.set()
        assert go_on.wait(TIMEOUT)
        return connectors.normalize(platform, topic, payload)

    before = deadlocks(rt.engine)
    applying = Worker(rt.engine, lambda s: intake.process_delivery(s, order, pausing_normalize, rt.timing))
    applying.start()
    assert store_locked.wait(TIMEOUT)  # intake holds the store
    sending = Worker(rt.engine, lambda s: rt.sender.send_batch(rt.sessions, claimed))
    sending.start()
    wait_until_any_blocked(rt.engine)  # the send job's check waits for the store
    go_on.set()  # intake cancels the shopper's messages and commits
    applying.join(TIMEOUT)
    sending.join(TIMEOUT)
    assert not applying.is_alive() and not sending.is_alive()
    assert applying.error is None and sending.error is None, (applying.error, sending.error)
    assert deadlocks(rt.engine) == before
    with rt.sessions() as session:
        statuses = session.scalars(select(t.RecoveryMessage.status).where(t.RecoveryMessage.id.in_(claimed))).all()
    assert set(statuses) == {"cancelled"}
