"""The send policy through the real loop (SQLite and PostgreSQL): consent by region, bots, quiet hours, caps."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime
from recovery.sending.channels import FakeChannel, OutboundSms
from recovery.storage import tables as t
from tests.conftest import drain
from tests.loop_helpers import (
    HOUR,
    abandon_all,
    claim,
    daytime,
    loop_runtime,
    messages,
    send_at,
    sender_at,
    set_store,
)
from tests.support import shopify


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    yield from loop_runtime(database_url, tmp_path, fake)


def checkout(rt: Runtime, **changes: object) -> None:
    payload = copy.deepcopy(shopify.load("checkouts_update"))
    address = changes.pop("address", None)
    if address:
        payload["shipping_address"].update(address)
        payload["billing_address"].update(address)
    customer = changes.pop("customer", None)
    if customer:
        payload["customer"].update(customer)
    payload.update(changes)
    shopify.post(create_app(runtime=rt).test_client(), "checkouts_update", payload=payload)
    drain(rt)


def only_channel(rt: Runtime, channel: str) -> None:
    with rt.sessions.begin() as session:
        for m in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.channel != channel)):
            m.status, m.reason = "cancelled", "test: one channel"


def test_uk_guest_without_consent_gets_no_email_but_a_us_guest_does(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt, buyer_accepts_marketing=False, buyer_accepts_sms_marketing=False,
             address={"country_code": "GB", "province_code": None})
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    send_at(rt, at + 5 * HOUR)
    assert fake.sent == []
    assert messages(rt, cart_id)[0].reason == "no_email_consent_region_GB"
    # The same shopper in the US: "email to anyone who gave an email at checkout" (the default policy)
    with rt.sessions.begin() as session:
        session.get(t.Cart, cart_id).country = "US"  # type: ignore[union-attr]
    send_at(rt, at + 24 * HOUR)
    assert [m.step for m in fake.sent] == [2]


def test_uk_existing_customer_gets_email_and_opt_in_only_blocks_guests(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt, buyer_accepts_marketing=False, customer={"orders_count": 2},
             address={"country_code": "FR", "province_code": None})
    at = daytime(10)
    abandon_all(rt, at)
    assert send_at(rt, at + 5 * HOUR) == ["sent"]  # soft opt-in: an existing customer
    set_store(rt, email_consent_policy="opt_in_only")
    assert send_at(rt, at + 24 * HOUR) == ["cancelled: no_email_consent"]


def test_a_consent_record_is_written_and_a_newer_withdrawal_wins(rt: Runtime) -> None:
    checkout(rt)  # both boxes ticked at 2026-09-14 14:42 -04:00
    shopify.post(create_app(runtime=rt).test_client(), "customers_update__unsubscribed")  # 2026-09-20
    drain(rt)
    checkout(rt, updated_at="2026-09-14T14:50:10-04:00")  # a later checkout update, still older than the withdrawal
    with rt.sessions() as session:
        rows = {(c.channel, c.address): (c.granted, c.basis, c.source) for c in session.scalars(select(t.Consent))}
    assert rows[("email", "maren.holloway@example.com")] == (False, "withdrawn", "customers_update")


def test_crawler_and_disposable_carts_are_kept_but_never_messaged(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt, email="storebot-1@storebotmail.joonix.net")
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    send_at(rt, at + 5 * HOUR)
    with rt.sessions() as session:
        stored = session.get(t.Cart, cart_id)
        assert stored is not None and stored.bot_reason == "crawler_address" and stored.status == "abandoned"
    assert fake.sent == [] and messages(rt, cart_id)[0].reason == "bot:crawler_address"


def test_sms_due_at_night_is_moved_to_the_morning_then_sent(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt)  # Asheville, NC; phone +1 828: America/New_York
    at = daytime(19)  # abandoned 19:00; the SMS step is due 48 h later at 19:00, fine; make it 22:00
    [cart_id] = abandon_all(rt, at)
    only_channel(rt, "sms")
    with rt.sessions.begin() as session:
        sms = session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.channel == "sms")).one()
        sms.due_at = at + 27 * HOUR  # 22:00 the next day
    night = at + 27 * HOUR
    assert send_at(rt, night) == ["rescheduled: quiet_hours"]
    [row] = [m for m in messages(rt, cart_id) if m.channel == "sms"]
    assert row.status == "planned" and row.due_at == daytime(8, after=night) and fake.sent == []
    assert send_at(rt, row.due_at - HOUR) == []  # nothing due before the morning
    assert send_at(rt, row.due_at) == ["sent"]
    [sms_out] = fake.sent
    assert isinstance(sms_out, OutboundSms)


def test_sms_past_48_hours_is_cancelled(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt)
    at = daytime(10)
    abandon_all(rt, at)
    only_channel(rt, "sms")
    assert send_at(rt, at + 50 * HOUR) == ["cancelled: sms_window_expired"] and fake.sent == []


def test_sms_whose_48_hours_end_at_night_is_planned_before_the_window_closes(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt)  # America/New_York: SMS allowed 08:00-21:00
    at = daytime(23)  # 48 h later is 23:00, and 08:00 the morning after would be past the 48 h limit
    [cart_id] = abandon_all(rt, at)
    [sms] = [m for m in messages(rt, cart_id) if m.channel == "sms"]
    assert sms.due_at == at + 46 * HOUR - HOUR / 2 - HOUR / 60  # 20:29 local: over half an hour before 21:00
    only_channel(rt, "sms")
    assert send_at(rt, sms.due_at) == ["sent"]
    [sms_out] = fake.sent
    assert isinstance(sms_out, OutboundSms)


def test_shopper_cap_moves_the_second_message_and_the_store_can_turn_it_off(rt: Runtime, fake: FakeChannel) -> None:
    checkout(rt)
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    assert send_at(rt, at + 5 * HOUR) == ["sent"]
    sent_at = messages(rt, cart_id)[0].sent_at
    with rt.sessions.begin() as session:  # step 2 pulled forward: it would reach the shopper 1 h later
        step2 = session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.step == 2)).one()
        step2.due_at = at + 6 * HOUR
    assert send_at(rt, at + 6 * HOUR) == ["rescheduled: shopper_cap"]
    assert messages(rt, cart_id)[1].due_at == sent_at + 16 * HOUR  # type: ignore[operator]
    set_store(rt, shopper_cap="off")
    with rt.sessions.begin() as session:
        session.get(t.RecoveryMessage, step2.id).due_at = at + 7 * HOUR  # type: ignore[union-attr]
    assert send_at(rt, at + 7 * HOUR) == ["sent"]


def test_at_most_three_emails_per_cart(rt: Runtime, fake: FakeChannel) -> None:
    set_store(rt, shopper_cap="off", sequence='[{"channel":"email","template":"gentle_reminder","delay":3600},'
              '{"channel":"email","template":"value_proposition","delay":7200},'
              '{"channel":"email","template":"offer","delay":10800},'
              '{"channel":"email","template":"final_call","delay":14400}]')
    checkout(rt)
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    outcomes = [send_at(rt, at + hours * HOUR) for hours in (1, 2, 3, 4)]
    assert outcomes == [["sent"], ["sent"], ["sent"], ["cancelled: email_cap_reached"]]
    assert len(fake.sent) == 3 and messages(rt, cart_id)[3].status == "cancelled"


def send_side_by_side(rt: Runtime, now: datetime) -> list[str]:
    """Claim the two messages due at `now` and send each from its own worker thread, both at once."""
    ids = claim(rt, now)
    assert len(ids) == 2
    barrier = threading.Barrier(2)
    results: dict[int, dict[int, str]] = {}

    def work(message_id: int) -> None:
        sender = sender_at(rt, now)
        barrier.wait()
        results[message_id] = sender.send_batch(rt.sessions, [message_id])

    threads = [threading.Thread(target=work, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcome for r in results.values() for outcome in r.values())


def test_two_workers_never_break_the_shopper_cap(rt: Runtime, fake: FakeChannel, database_url: str) -> None:
    """Two carts of one shopper, their messages claimed together and sent by two workers at once."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL (SQLite serializes writers anyway)")
    set_store(rt, sequence='[{"channel":"email","template":"gentle_reminder","delay":3600}]')
    checkout(rt)
    # the same customer account, another email and phone: the carts do not supersede each other
    checkout(rt, id=2, token="second-token", cart_token="second-cart", email="maren.h2@example.com",
             phone="+18285550148", sms_marketing_phone="+18285550148")
    at = daytime(10)
    assert len(abandon_all(rt, at)) == 2
    assert send_side_by_side(rt, at + 2 * HOUR) == ["rescheduled: shopper_cap", "sent"] and len(fake.sent) == 1


def test_two_workers_never_break_the_per_cart_email_cap(rt: Runtime, fake: FakeChannel, database_url: str) -> None:
    """The third and fourth email of one cart claimed together and sent by two workers at once."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL (SQLite serializes writers anyway)")
    set_store(rt, shopper_cap="off", sequence='[{"channel":"email","template":"gentle_reminder","delay":3600},'
              '{"channel":"email","template":"value_proposition","delay":7200},'
              '{"channel":"email","template":"final_call","delay":10800},'
              '{"channel":"email","template":"final_call","delay":14400}]')
    checkout(rt)
    at = daytime(10)
    [cart_id] = abandon_all(rt, at)
    assert [send_at(rt, at + hours * HOUR) for hours in (1, 2)] == [["sent"], ["sent"]]
    with rt.sessions.begin() as session:  # step 4 pulled forward: both are due at once
        session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.step == 4)).one().due_at = at + 3 * HOUR
    assert send_side_by_side(rt, at + 3 * HOUR) == ["cancelled: email_cap_reached", "sent"] and len(fake.sent) == 3
    assert sorted(m.status for m in messages(rt, cart_id)) == ["cancelled", "sent", "sent", "sent"]
