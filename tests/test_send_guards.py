"""Issue 18: each send-time guard reached alone. Every scenario below gets past every other check (the
event-driven cancellations included), so deleting the one guard named in the test makes it fail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime
from recovery.consent import records as consent
from recovery.sending.channels import FakeChannel
from recovery.sending.checks import Candidate
from recovery.sending.policy import verdicts
from recovery.sequence.timing import Timing
from recovery.storage import tables as t
from tests.conftest import drain
from tests.loop_helpers import (
    HOUR,
    abandon_all,
    daytime,
    loop_runtime,
    messages,
    now,
    send_at,
    send_due,
)
from tests.support import shopify


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    yield from loop_runtime(database_url, tmp_path, fake, shopper_cap="off")


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def deliver(rt: Runtime, client, name: str, **changes: object) -> None:  # type: ignore[no-untyped-def]
    payload = {**shopify.load(name), **changes}
    assert shopify.post(client, name, payload=payload).status_code == 200
    drain(rt)


def test_an_order_recorded_before_a_late_checkout_of_another_cart_stops_its_reminders(rt: Runtime, client, fake) -> None:  # type: ignore[no-untyped-def]
    # Guard: recovery/sending/checks.py _shoppers_who_ordered (same email, order placed after the cart's activity).
    # Given the shopper's order is recorded first (no cart of theirs is known yet: nothing to cancel)
    stamp = now().isoformat()
    deliver(rt, client, "orders_create", created_at=stamp, processed_at=stamp, checkout_token="other-checkout",
            cart_token="other-cart")
    # When a checkout of another cart of the same shopper, from before the order, arrives late
    deliver(rt, client, "checkouts_update", updated_at=(now() - timedelta(minutes=30)).isoformat())
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    # Then none of its reminders goes out, and each says why
    send_due(rt, at + 200 * HOUR)
    assert fake.sent == []
    assert {(m.status, m.reason) for m in messages(rt, cart_id)} == {("cancelled", "shopper ordered")}


def test_a_holdout_assignment_made_after_planning_stops_the_sends(rt: Runtime, client, fake) -> None:  # type: ignore[no-untyped-def]
    # Guard: recovery/sending/checks.py, the holdout re-check at send time.
    deliver(rt, client, "checkouts_update")
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    assert {m.status for m in messages(rt, cart_id)} == {"planned"}
    with rt.sessions.begin() as session:  # e.g. the experiment was re-drawn after the plan was made
        assignment = session.scalars(select(t.ExperimentAssignment).where(t.ExperimentAssignment.cart_id == cart_id)).one()
        assignment.variant = "holdout"
    send_due(rt, at + 200 * HOUR)
    assert fake.sent == []
    assert {(m.status, m.reason) for m in messages(rt, cart_id)} == {("cancelled", "holdout")}


def test_a_withdrawn_sms_consent_record_wins_over_the_carts_ticked_box(rt: Runtime, client, fake) -> None:  # type: ignore[no-untyped-def]
    # Guard: recovery/sending/checks.py _consent_and_bots → consent.sms_allowed (the record is the latest word).
    deliver(rt, client, "checkouts_update")  # buyer_accepts_sms_marketing: true
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    with rt.sessions.begin() as session:  # a STOP recorded for the number; the cart still says it accepts SMS
        store_id = session.scalar(select(t.Store.id))
        consent.record(session, store_id, "sms", "+18285550147", granted=False, basis="withdrawn",
                       source="sms_keyword", at=t.utcnow())
        assert session.get(t.Cart, cart_id).accepts_sms is True  # type: ignore[union-attr]
    sms = next(m for m in messages(rt, cart_id) if m.channel == "sms")
    send_at(rt, sms.due_at)
    after = next(m for m in messages(rt, cart_id) if m.channel == "sms")
    assert (after.status, after.reason) == ("cancelled", "no SMS consent")
    assert not any(getattr(s, "to", None) == "+18285550147" for s in fake.sent)


def test_the_per_cart_cap_cancels_in_the_policy_verdicts(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    # Guard: recovery/sending/policy/__init__.py verdicts, MAX_PER_CART (one SMS per cart), before any ledger lock.
    deliver(rt, client, "checkouts_update")
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    with rt.sessions.begin() as session:
        plan = session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id == cart_id)
                               .order_by(t.RecoveryMessage.step)).all()
        sms = next(m for m in plan if m.channel == "sms")
        extra = t.RecoveryMessage(store_id=sms.store_id, cart_id=cart_id, step=9, channel="sms", template="offer",
                                  due_at=sms.due_at, status="planned")
        sms.status, sms.sent_at = "sent", sms.due_at  # one SMS already handed over for this cart
        session.add(extra)
        session.flush()
        cart_row, store = session.get(t.Cart, cart_id), session.scalars(select(t.Store)).one()
        out, guards = verdicts(session, [Candidate(extra, cart_row, store)], sms.due_at, Timing())  # type: ignore[arg-type]
    assert (out[extra.id].action, out[extra.id].reason) == ("cancel", "sms_cap_reached")
    assert guards == {}
