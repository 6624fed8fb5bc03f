"""Browse abandonment end to end: product-page 'view' beacons over POST /track (real Origin), the catalog fact
from a signed products/update, the dispatcher's browse pass under a moved clock, the real send job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.consent.purge import purge_unauthenticated
from recovery.flows import browse
from recovery.sending.channels import FakeChannel, OutboundEmail
from recovery.storage import tables as t
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import daytime, messages, send_at, set_store
from tests.support.catalog import post_topic, product
from tests.support.shopify import SHOP

ORIGIN = f"https://{SHOP}"
SID = "b7RkQ2vX9mTa4LzC"
TOKEN = "c1-3e5a7c9d2b4e6f7f3a9b2e4d6c8a0b1e"
TOTE = "8840213577001"  # the products_update fixture's product (Waxed Canvas Tote)
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
    set_store(runtime, holdout_percent=0, browse_abandonment=True)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime) -> Any:
    c = create_app(runtime=rt).test_client()
    assert post_topic(c, "products/update", product(price="49.90")).status_code == 200  # the recorded catalog fact
    drain(rt)
    return c


def beacon(client: Any, kind: str, **extra: Any) -> None:
    body = {"v": 1, "shop": SHOP, "sid": SID, "type": kind, "ts": int(time.time() * 1000), **extra}
    answer = client.post("/track", data=json.dumps(body), headers={"Content-Type": "text/plain", "Origin": ORIGIN})
    assert answer.status_code in (200, 204), answer.get_data(as_text=True)


def cart(client: Any, *product_ids: str) -> None:
    items = [{"variant_id": "4631028767" + str(n), "product_id": p, "quantity": 1, "price": 2400, "title": "Mug"}
             for n, p in enumerate(product_ids)]
    beacon(client, "cart", cart={"token": TOKEN, "currency": "USD", "total": 2400 * len(items), "count": len(items),
                                 "items": items})


def known_shopper(client: Any) -> None:
    """A cart with another product and an email the shopper typed (with consent), in this session."""
    cart(client, "8840213570002")
    beacon(client, "contact", cart={"token": TOKEN}, contact={"email": "browser@example.com"},
           consent={"analytics": True, "marketing": True})


def views(client: Any, n: int = 2, product_id: str = TOTE) -> datetime:
    for _ in range(n):
        beacon(client, "view", page="product", product_id=product_id)
    return datetime.now(UTC)


def plan(rt: Runtime, at: datetime) -> dict[str, int]:
    with rt.sessions.begin() as session:
        return dict(browse.run(session, at))


def browse_messages(rt: Runtime) -> list[t.RecoveryMessage]:
    return [m for m in messages(rt) if m.flow == "browse_abandonment"]


def due(last_view: datetime) -> datetime:
    """A daytime moment (no quiet hours) after the 24 h delay."""
    return daytime(after=last_view + timedelta(hours=24, minutes=1))


def test_a_known_shopper_who_viewed_twice_gets_one_reminder(rt: Runtime, client: Any, fake: FakeChannel) -> None:
    known_shopper(client)
    last = views(client, 2)
    assert plan(rt, last + timedelta(hours=23)) == {}  # not yet: 24 h after the last view
    at = due(last)
    assert plan(rt, at) == {"planned": 1}
    [message] = browse_messages(rt)
    assert message.flow_data["product_id"] == TOTE and message.channel == "email"
    assert "sent" in send_at(rt, at + MINUTE)
    [email] = [m for m in fake.sent if isinstance(m, OutboundEmail)]
    assert email.to == "browser@example.com" and email.subject == "Still thinking about Waxed Canvas Tote?"
    assert "https://" + SHOP + "/products/waxed-canvas-tote" in email.text
    # More views in the same (or a later) session within 30 days: no second reminder
    last = views(client, 3)
    assert plan(rt, due(last)) in ({}, {"already": 1})
    assert len(browse_messages(rt)) == 1


def test_no_reminder_when_the_product_was_added_to_the_cart(rt: Runtime, client: Any) -> None:
    known_shopper(client)
    last = views(client, 2)
    cart(client, "8840213570002", TOTE)
    assert plan(rt, due(last)) == {"bought_or_in_cart": 1}
    assert browse_messages(rt) == []


def test_no_reminder_for_an_unknown_shopper_a_single_view_or_when_off(rt: Runtime, client: Any) -> None:
    cart(client, "8840213570002")  # a cart, but no address
    last = views(client, 2)
    assert plan(rt, due(last)) == {"unknown_shopper": 1}
    beacon(client, "contact", cart={"token": TOKEN}, contact={"email": "browser@example.com"},
           consent={"analytics": True, "marketing": True})
    last = views(client, 1, "8840213570003")  # a single view of another product
    assert plan(rt, due(last)) == {}
    views(client, 2, "8840213570004")
    set_store(rt, browse_abandonment=False)  # turned off after the views: nothing planned
    assert plan(rt, due(datetime.now(UTC))) == {}
    views(client, 2, "8840213570005")  # and while off, views are not even kept
    with rt.sessions() as session:
        assert session.scalar(select(t.ProductView).where(t.ProductView.product_id == "8840213570005")) is None
    assert browse_messages(rt) == []


def test_an_unknown_product_plans_nothing(rt: Runtime, client: Any) -> None:
    known_shopper(client)
    last = views(client, 2, "8840213579999")  # no products/update recorded it
    assert plan(rt, due(last)) == {"unknown_product": 1}


def test_view_beacons_are_validated_and_counted_once_per_session_and_product(rt: Runtime, client: Any) -> None:
    for bad in ({}, {"product_id": "gid://shopify/Product/1"}, {"product_id": "1" * 41}, {"product_id": 12}):
        body = {"v": 1, "shop": SHOP, "sid": SID, "type": "view", "ts": int(time.time() * 1000), **bad}
        answer = client.post("/track", data=json.dumps(body), headers={"Content-Type": "text/plain", "Origin": ORIGIN})
        assert answer.status_code == 400 and "product_id" in answer.get_json()["error"]
    views(client, 3)
    with rt.sessions() as session:
        rows = session.scalars(select(t.ProductView)).all()
        assert [(r.product_id, r.views, r.cart_id) for r in rows] == [(TOTE, 3, None)]  # no cart named: not linked
        assert session.scalar(select(func.count()).select_from(t.TrackEvent).where(t.TrackEvent.type == "view")) == 0
    with rt.sessions.begin() as session:  # purged three days after the reminder came due
        assert purge_unauthenticated(session, datetime.now(UTC) + timedelta(days=3))["product_views"] == 0
        assert purge_unauthenticated(session, datetime.now(UTC) + timedelta(days=5))["product_views"] == 1


def test_a_planned_reminder_is_not_sent_once_the_product_is_in_the_cart(rt: Runtime, client: Any,
                                                                        fake: FakeChannel) -> None:
    known_shopper(client)
    last = views(client, 2)
    at = due(last)
    assert plan(rt, at) == {"planned": 1}
    cart(client, "8840213570002", TOTE)
    send_at(rt, at + MINUTE)
    [message] = browse_messages(rt)
    assert message.status == "cancelled" and [m for m in fake.sent if isinstance(m, OutboundEmail)] == []


VID = "k3v9q2m7x1c8z4b6n0p5r2t7"  # the tracker's visitor id (24 base-36 characters, kept across sessions)
LATER_SID = "Q8wE3rT6yU1iO4pA"  # a later session of the same browser


def later_views(client: Any, vid: str | None, n: int = 2) -> datetime:
    """Views in a later session, as the tracker sends them on Shopify (with the Customer Privacy API's answer)."""
    for _ in range(n):
        beacon(client, "view", page="product", product_id=TOTE, sid=LATER_SID, consent={"analytics": True, "marketing": True},
               **({"vid": vid} if vid else {}))
    return datetime.now(UTC)


def test_a_shopper_known_from_an_earlier_session_is_recognised_by_the_visitor_id(
    rt: Runtime, client: Any, fake: FakeChannel
) -> None:
    # Session 1: the browser's cart and typed address, with consent; its beacons carry the visitor id
    cart(client, "8840213570002")
    beacon(client, "contact", cart={"token": TOKEN}, contact={"email": "browser@example.com"},
           consent={"analytics": True, "marketing": True}, vid=VID)
    # Session 2 (the session id rotated): two views that name no cart, only the same visitor id
    last = later_views(client, VID)
    with rt.sessions() as session:
        [row] = session.scalars(select(t.ProductView).where(t.ProductView.sid == LATER_SID)).all()
        assert row.cart_id is not None and row.views == 2
    at = due(last)
    assert plan(rt, at) == {"planned": 1}
    assert "sent" in send_at(rt, at + MINUTE)
    [email] = [m for m in fake.sent if isinstance(m, OutboundEmail)]
    assert email.to == "browser@example.com" and "Waxed Canvas Tote" in email.subject
    with rt.sessions.begin() as session:  # the visitor id is kept 30 days after it was last tied to a cart
        assert purge_unauthenticated(session, datetime.now(UTC) + timedelta(days=29))["tracker_visitors"] == 0
        assert purge_unauthenticated(session, datetime.now(UTC) + timedelta(days=31))["tracker_visitors"] == 1


def test_another_browser_or_a_visitor_id_given_without_consent_is_not_recognised(rt: Runtime, client: Any) -> None:
    cart(client, "8840213570002")
    beacon(client, "cart", cart={"token": TOKEN}, consent={"analytics": False, "marketing": False}, vid=VID)
    beacon(client, "contact", cart={"token": TOKEN}, contact={"email": "browser@example.com"},
           consent={"analytics": True, "marketing": True}, vid="z" * 24)
    later_views(client, VID)  # tied without consent: never remembered
    yes = {"analytics": True, "marketing": True}
    beacon(client, "view", page="product", product_id=TOTE, sid="Zz9Yy8Xx7Ww6Vv5U", vid="a" * 24, consent=yes)  # another browser
    beacon(client, "view", page="product", product_id=TOTE, sid="Zz9Yy8Xx7Ww6Vv5U", vid="<bad>", consent=yes)  # dropped, not refused
    with rt.sessions() as session:
        rows = session.scalars(select(t.ProductView).where(t.ProductView.sid != SID)).all()
        assert sorted((r.sid, r.views, r.cart_id) for r in rows) == [(LATER_SID, 2, None), ("Zz9Yy8Xx7Ww6Vv5U", 2, None)]
        assert session.scalars(select(t.TrackerVisitor.vid)).all() == ["z" * 24]


def order_by_browser(client: Any, rt: Runtime, placed: datetime, number: int) -> None:
    """orders/create for the browser's tracker cart (its token), placed at `placed`."""
    import copy

    from tests.support import shopify

    payload = copy.deepcopy(shopify.load("orders_create"))
    stamp = placed.isoformat()
    payload.update(id=number, name=f"#{number}", email="browser@example.com", contact_email="browser@example.com",
                   cart_token=TOKEN, checkout_token=f"browse-token-{number}", customer=None, created_at=stamp,
                   processed_at=stamp, updated_at=stamp)
    assert post_topic(client, "orders/create", payload).status_code == 200
    drain(rt)


def test_a_returning_buyer_is_reminded_but_not_after_ordering_again(rt: Runtime, client: Any, fake: FakeChannel) -> None:
    # Session 1, three days ago: the browser's cart, typed address (with consent) and visitor id, then its order
    cart(client, "8840213570002")
    beacon(client, "contact", cart={"token": TOKEN}, contact={"email": "browser@example.com"},
           consent={"analytics": True, "marketing": True}, vid=VID)
    order_by_browser(client, rt, datetime.now(UTC) - timedelta(days=3), 5001)
    with rt.sessions() as session:
        assert session.scalars(select(t.Cart.status)).all() in (["completed"], ["recovered"])
    # Session 2, today: two views of the tote; the bought cart is history, not a purchase after viewing
    last = later_views(client, VID)
    at = due(last)
    assert plan(rt, at) == {"planned": 1}
    [message] = browse_messages(rt)
    # ... and it goes, unless the shopper orders after viewing: the order cancels it, and were it still queued
    # the send-time check (an order after the last view) would stop it
    order_by_browser(client, rt, datetime.now(UTC), 5002)
    [message] = browse_messages(rt)
    assert message.status == "cancelled"
    with rt.sessions.begin() as session:  # as if the cancellation had been missed
        session.get(t.RecoveryMessage, message.id).status = "planned"
    assert send_at(rt, at + MINUTE) == ["cancelled: shopper ordered"]
    assert [m for m in fake.sent if isinstance(m, OutboundEmail)] == []


def test_a_returning_buyer_who_did_not_order_again_gets_the_reminder(rt: Runtime, client: Any, fake: FakeChannel) -> None:
    # Session 1 four days ago (the beacons' own times), its order three days ago: an order after the cart's
    # last activity, but before the views, so no reason to stay silent now
    then = int((datetime.now(UTC) - timedelta(days=4)).timestamp() * 1000)
    beacon(client, "cart", ts=then, cart={"token": TOKEN, "currency": "USD", "total": 2400, "count": 1, "items": [
        {"variant_id": "46310287670", "product_id": "8840213570002", "quantity": 1, "price": 2400, "title": "Mug"}]})
    beacon(client, "contact", ts=then, cart={"token": TOKEN}, contact={"email": "browser@example.com"},
           consent={"analytics": True, "marketing": True}, vid=VID)
    order_by_browser(client, rt, datetime.now(UTC) - timedelta(days=3), 5001)
    last = later_views(client, VID)
    at = due(last)
    assert plan(rt, at) == {"planned": 1}
    assert send_at(rt, at + MINUTE) == ["sent"]
    [email] = [m for m in fake.sent if isinstance(m, OutboundEmail)]
    assert email.to == "browser@example.com" and "Waxed Canvas Tote" in email.subject


def test_a_cart_bought_during_the_browsing_session_stops_the_reminder(rt: Runtime, client: Any) -> None:
    known_shopper(client)
    last = views(client, 2)
    order_by_browser(client, rt, datetime.now(UTC), 5003)
    assert plan(rt, due(last)) == {"bought_or_in_cart": 1}
