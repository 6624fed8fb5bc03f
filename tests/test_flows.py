"""Triggered flows end to end: signed webhooks through the real endpoint and a real Dramatiq worker on
Redis (SQLite and PostgreSQL), the dispatcher's flow pass, the real send job with its last-mile checks."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel, OutboundEmail
from recovery.flows import fanout
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, daytime, messages, send_at, set_store
from tests.support import shopify
from tests.support.catalog import MUG_ITEM, MUG_VARIANT, TOTE_VARIANT, inventory, post_topic, product

MINUTE = timedelta(minutes=1)


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel, redis_url: str) -> Iterator[Runtime]:
    runtime = build_runtime(
        make_settings(database_url, tmp_path, redis_url=redis_url), channels={"email": fake, "sms": fake, "push": fake}
    )
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def post(rt: Runtime, client, topic: str, payload: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    assert post_topic(client, topic, payload).status_code == 200
    drain(rt)


def checkout(rt: Runtime, client, **changes: object) -> None:  # type: ignore[no-untyped-def]
    payload = copy.deepcopy(shopify.load("checkouts_update"))
    payload.update(changes)
    assert shopify.post(client, "checkouts_update", payload=payload).status_code == 200
    drain(rt)


def fan_out(rt: Runtime, at: datetime) -> dict[str, int]:
    with rt.sessions.begin() as session:
        return dict(fanout.run(session, at, rt.timing))


def flow_messages(rt: Runtime, flow: str) -> list[t.RecoveryMessage]:
    return [m for m in messages(rt) if m.flow == flow]


def flow_emails(fake: FakeChannel) -> list[OutboundEmail]:
    return [m for m in fake.sent if isinstance(m, OutboundEmail) and any(c.startswith("flow-") for c in m.categories)]


def abandoned(rt: Runtime, client) -> datetime:  # type: ignore[no-untyped-def]
    """The fixture checkout (Waxed Canvas Tote 49.90 x2, Stoneware Mug 24.00), abandoned at 10:00 in New York."""
    checkout(rt, client)
    at = daytime()
    assert len(abandon_all(rt, at)) == 1
    return at


def test_a_price_drop_reaches_the_shopper_once_with_old_and_new_price(rt: Runtime, client, fake: FakeChannel) -> None:
    at = abandoned(rt, client)
    # The tote drops from 49.90 (what the shopper saw) to 39.90: 20 %, 10 USD
    post(rt, client, "products/update", product(price="39.90"))
    assert fan_out(rt, at + MINUTE) == {"planned": 1}
    [planned] = flow_messages(rt, "price_drop")
    assert (planned.channel, planned.template, planned.flow_data["was"], planned.flow_data["now"]) == (
        "email", "price_drop", "49.90", "39.90")
    assert "sent" in send_at(rt, at + 2 * MINUTE)
    [email] = flow_emails(fake)
    assert email.subject == "Price drop: Waxed Canvas Tote is now $39.90"
    assert "now costs $39.90 instead of $49.90" in email.text and email.to == "maren.holloway@example.com"
    # A second drop within 30 days, and then a rise, plan nothing more
    post(rt, client, "products/update", product(price="29.90", updated_at="2026-09-16T10:00:04-04:00"))
    assert fan_out(rt, at + 3 * MINUTE) == {"already": 1}
    post(rt, client, "products/update", product(price="59.90", updated_at="2026-09-16T11:00:04-04:00"))
    assert fan_out(rt, at + 4 * MINUTE) == {}
    assert len(flow_messages(rt, "price_drop")) == 1 and len(flow_emails(fake)) == 1


def test_a_drop_below_the_threshold_is_no_news(rt: Runtime, client) -> None:
    at = abandoned(rt, client)
    set_store(rt, price_drop_threshold="25%")
    post(rt, client, "products/update", product(price="39.90"))  # 20 % < 25 %
    assert fan_out(rt, at + MINUTE) == {}
    assert flow_messages(rt, "price_drop") == []


def test_a_purchase_in_between_stops_the_price_drop(rt: Runtime, client, fake: FakeChannel) -> None:
    at = abandoned(rt, client)
    post(rt, client, "products/update", product(price="39.90"))
    assert fan_out(rt, at + MINUTE) == {"planned": 1}
    # The shopper buys (the fixture order of the same checkout) before the message goes
    order = {**shopify.load("orders_create"), "created_at": (at + 2 * MINUTE).isoformat(),
             "processed_at": (at + 2 * MINUTE).isoformat()}
    assert shopify.post(client, "orders_create", payload=order).status_code == 200
    drain(rt)
    send_at(rt, at + 3 * MINUTE)
    [message] = flow_messages(rt, "price_drop")
    assert message.status == "cancelled" and flow_emails(fake) == []


def test_restock_reaches_only_shoppers_whose_cart_held_the_variant(rt: Runtime, client, fake: FakeChannel) -> None:
    # Two shoppers: one cart holds the tote, the other only the mug
    checkout(rt, client)
    other = copy.deepcopy(shopify.load("checkouts_update"))
    other.update(id=other["id"] + 1, token="b" * 32, cart_token="c" * 32, email="other.shopper@example.com")
    other["line_items"] = [i for i in other["line_items"] if str(i["variant_id"]) == MUG_VARIANT]
    assert shopify.post(client, "checkouts_update", payload=other).status_code == 200
    drain(rt)
    at = daytime()
    assert len(abandon_all(rt, at)) == 2
    post(rt, client, "products/update", product(price="49.90"))  # links the tote to its inventory item
    post(rt, client, "products/update", product(price="24.00", variant=MUG_VARIANT, item=MUG_ITEM,
                                                product_id=8840213610025, title="Stoneware Mug"))
    post(rt, client, "inventory_levels/update", inventory(0))  # the tote sells out...
    post(rt, client, "inventory_levels/update", inventory(0, item=MUG_ITEM))
    post(rt, client, "inventory_levels/update", inventory(5, updated_at="2026-09-16T11:12:33-04:00"))  # ...and is back
    assert fan_out(rt, at + MINUTE) == {"planned": 1}
    send_at(rt, at + 2 * MINUTE)
    [email] = flow_emails(fake)
    assert email.to == "maren.holloway@example.com" and email.subject == "Waxed Canvas Tote is back in stock"


def test_a_flow_in_quiet_hours_goes_at_the_next_allowed_time(rt: Runtime, client, fake: FakeChannel) -> None:
    at = abandoned(rt, client)
    set_store(rt, email_quiet_hours="22:00-07:00", shopper_cap="off")  # the cart's own reminder goes at 07:00 too
    post(rt, client, "products/update", product(price="39.90"))
    night = daytime(hour=23, after=at)  # 23:00 in the shopper's New York
    assert fan_out(rt, night) == {"planned": 1}
    send_at(rt, night + MINUTE)
    [message] = flow_messages(rt, "price_drop")
    morning = daytime(hour=7, after=night)
    assert (message.status, message.due_at) == ("planned", morning) and flow_emails(fake) == []
    send_at(rt, morning + MINUTE)
    assert len(flow_emails(fake)) == 1


def test_cross_sell_recommends_what_others_bought_and_never_what_was_bought(
    rt: Runtime, client, fake: FakeChannel
) -> None:
    set_store(rt, cross_sell="on")
    # Past orders: the tote with a scarf (3 times), the tote with the mug (3 times), a belt alone
    for n, lines in enumerate([["TOTE", "SCARF"]] * 3 + [["TOTE", "MUG"]] * 3 + [["BELT"]] * 15):
        post(rt, client, "orders/create", _order(9000 + n, lines, email=f"past{n}@example.com"))
    checkout(rt, client)  # Maren's checkout, then her order of the tote and the mug, fulfilled
    placed = daytime()
    order = _order(1, ["TOTE", "MUG"], email="maren.holloway@example.com", at=placed)
    order.update(checkout_token=shopify.load("orders_create")["checkout_token"], buyer_accepts_marketing=True)
    post(rt, client, "orders/create", order)
    fulfilled = {**order, "fulfillment_status": "fulfilled", "fulfillments": [{"created_at": placed.isoformat()}]}
    post(rt, client, "orders/fulfilled", fulfilled)
    assert fan_out(rt, placed + MINUTE) == {"planned": 1}
    [message] = flow_messages(rt, "cross_sell")
    assert message.due_at == placed + 7 * 24 * HOUR
    send_at(rt, message.due_at + MINUTE)
    [email] = flow_emails(fake)
    assert "Silk Scarf" in email.text and "Leather Belt" in email.text
    assert "Waxed Canvas Tote" not in email.text and "Stoneware Mug" not in email.text


PRODUCTS = {"TOTE": (8840213577001, TOTE_VARIANT, "Waxed Canvas Tote", "49.90"),
            "MUG": (8840213610025, MUG_VARIANT, "Stoneware Mug", "24.00"),
            "SCARF": (8840213700001, "46310287900001", "Silk Scarf", "35.00"),
            "BELT": (8840213700002, "46310287900002", "Leather Belt", "45.00")}


def _order(number: int, lines: list[str], *, email: str, at: datetime | None = None) -> dict:  # type: ignore[type-arg]
    payload = copy.deepcopy(shopify.load("orders_create"))
    stamp = (at or daytime()).isoformat()
    template = payload["line_items"][0]
    payload.update(id=number, name=f"#{number}", email=email, contact_email=email, created_at=stamp, processed_at=stamp,
                   checkout_token=f"token-{number}", cart_token=None, customer=None, buyer_accepts_marketing=False)
    payload["line_items"] = [
        {**template, "product_id": PRODUCTS[p][0], "variant_id": int(PRODUCTS[p][1]), "title": PRODUCTS[p][2],
         "price": PRODUCTS[p][3], "quantity": 1}
        for p in lines
    ]
    return payload



def test_each_flow_has_its_own_holdout_and_its_line_in_the_report(rt: Runtime, client, fake: FakeChannel) -> None:
    at = abandoned(rt, client)  # the cart sequence's holdout is 0 %: this shopper is treated there
    set_store(rt, holdout_percent=100)  # ... and every flow's own draw now holds out
    post(rt, client, "products/update", product(price="39.90"))
    assert fan_out(rt, at + MINUTE) == {"holdout": 1}
    assert flow_messages(rt, "price_drop") == []
    with rt.sessions() as session:
        [event] = session.scalars(select(t.FlowEvent)).all()
        assert (event.flow, event.variant, event.subject) == ("price_drop", "holdout", TOTE_VARIANT)
        # The shopper orders within the attribution window: an order in the holdout, none sent
        store_id = session.scalars(select(t.Store.id)).one()
    order = {**shopify.load("orders_create"), "created_at": (at + HOUR).isoformat(), "processed_at": (at + HOUR).isoformat()}
    assert shopify.post(client, "orders_create", payload=order).status_code == 200
    drain(rt)
    from recovery.flows.report import flow_lines, format_line

    with rt.sessions() as session:
        lines = {line.flow: line for line in flow_lines(session, store_id)}
    drop = lines["price_drop"]
    assert (drop.sent, drop.ordered, drop.lift.holdout_carts, drop.lift.holdout_ordered) == (0, 0, 1, 1)
    assert lines["cross_sell"].lift is None and not lines["cross_sell"].enabled
    assert "0/0 treated and 1/1 held-out shoppers ordered" in format_line(drop)


def test_a_shopper_known_only_by_phone_gets_the_price_drop_by_sms_with_consent(
    rt: Runtime, client, fake: FakeChannel
) -> None:
    payload = copy.deepcopy(shopify.load("checkouts_update"))
    payload.update(email=None)
    payload["customer"] = {**payload["customer"], "email": None}
    assert shopify.post(client, "checkouts_update", payload=payload).status_code == 200
    drain(rt)
    at = daytime()  # 10:00 in New York: inside the SMS window
    assert len(abandon_all(rt, at)) == 1
    post(rt, client, "products/update", product(price="39.90"))
    assert fan_out(rt, at + MINUTE) == {"planned": 1}
    [message] = flow_messages(rt, "price_drop")
    assert message.channel == "sms"
    send_at(rt, at + 2 * MINUTE)
    [sms] = [m for m in fake.sent if not isinstance(m, OutboundEmail)]
    assert "Waxed Canvas Tote from your cart is now $39.90 (was $49.90)" in sms.body and sms.to == "+18285550147"
