"""Helpers for recovery-loop tests: a runtime whose channels are fakes, and time passed explicitly."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.runtime import Runtime, build_runtime
from recovery.sending import dispatch
from recovery.sending.send import Sender
from recovery.storage import tables as t
from recovery.storage.tables import utcnow

HOUR = timedelta(hours=1)


def abandon_all(rt: Runtime, at: datetime | None = None) -> list[int]:
    with rt.sessions.begin() as session:
        return rt.abandoner.run(session, at or utcnow() + 2 * HOUR)


def send_due(rt: Runtime, at: datetime) -> list[str]:
    """Claim what is due at `at` and run each send job inline (the worker path is tested elsewhere)."""
    claimed = claim(rt, at)
    outcomes = rt.sender.send_batch(rt.sessions, claimed) if claimed else {}
    return [outcomes.get(message_id, "nothing to do") for message_id in claimed]


def sender_at(rt: Runtime, at: datetime) -> Sender:
    """The runtime's sender with its clock stopped at `at`: quiet hours and caps are judged at that moment,
    not at whatever hour the tests happen to run."""
    return dataclasses.replace(rt.sender, clock=lambda: at)


def send_at(rt: Runtime, at: datetime) -> list[str]:
    """Like send_due, with the sender's clock at `at` too (sender_at)."""
    claimed = claim(rt, at)
    outcomes = sender_at(rt, at).send_batch(rt.sessions, claimed) if claimed else {}
    return [outcomes.get(message_id, "nothing to do") for message_id in claimed]


def daytime(hour: int = 10, zone: str = "America/New_York", after: datetime | None = None) -> datetime:
    """The first `hour`:00 local time from `after` (two hours from now): a base time whose SMS steps are legal."""
    local = (after or now() + 2 * HOUR).astimezone(ZoneInfo(zone))
    base = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    return (base if base >= local else base + timedelta(days=1)).astimezone(UTC)


def claim(rt: Runtime, at: datetime) -> list[int]:
    """Claim without enqueueing (a session without the broker hook), so the test decides when jobs run."""
    with Session(rt.engine) as session, session.begin():
        return dispatch.claim_due(session, at)


def messages(rt: Runtime, cart_id: int | None = None) -> list[t.RecoveryMessage]:
    with rt.sessions() as session:
        query = select(t.RecoveryMessage).order_by(t.RecoveryMessage.cart_id, t.RecoveryMessage.step)
        if cart_id is not None:
            query = query.where(t.RecoveryMessage.cart_id == cart_id)
        return list(session.scalars(query))


def cart(rt: Runtime, cart_id: int) -> t.Cart:
    with rt.sessions() as session:
        found = session.get(t.Cart, cart_id)
        assert found is not None
        return found


def set_store(rt: Runtime, **settings: object) -> None:
    with rt.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        store.settings = {**(store.settings or {}), **settings}


def now() -> datetime:
    return datetime.now(UTC)


def loop_runtime(database_url: str, tmp_path: Path, fake: Any, **store: Any) -> Iterator[Runtime]:
    """The recovery loop's runtime, for a module's `rt` fixture (`yield from`): every channel is `fake`, one
    store with no holdout, plus `store`'s settings."""
    from tests.conftest import add_store, make_settings

    runtime = build_runtime(make_settings(database_url, tmp_path), channels={"email": fake, "sms": fake, "push": fake}, seed=3)
    add_store(runtime)
    set_store(runtime, holdout_percent=0, **store)
    yield runtime
    runtime.close()
