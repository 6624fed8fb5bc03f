"""Exit-popup offers with a unique single-use Shopify code: POST /track against a fake Shopify over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.runtime import Runtime
from recovery.sequence import offers
from recovery.storage import tables as t
from recovery.config.stores import get_store, set_settings
from tests.shopify_app_helpers import fake, install, rt, web  # noqa: F401
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP
from tests.test_track import TOKEN, beacon, send

TEXT = "10% off if you complete your order today"


def offer_store(rt: Runtime, web: Any, *pairs: str) -> None:  # type: ignore[no-untyped-def]
    assert install(web).status_code == 200
    with rt.sessions.begin() as session:
        set_settings(session, get_store(session, SHOP), [f"exit_offer={TEXT}", *pairs])
    assert send(web, beacon()).status_code == 204  # a cart with items and value: only those get codes


def creates(fake: FakeShopify) -> list[dict[str, Any]]:
    return [c["body"] for c in fake.graphql_calls() if "discountCodeBasicCreate" in c["body"]["query"]]


def codes(rt: Runtime) -> list[t.DiscountCode]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.DiscountCode).order_by(t.DiscountCode.id)))


def exit_beacon(sid: str = "k3JxQ9vT2mWb7YzA", **extra: Any) -> dict[str, Any]:
    return beacon("exit", sid=sid, cart={"token": TOKEN}, **extra)


def test_exit_offer_carries_one_unique_code_per_session_and_cart(rt, web, fake: FakeShopify) -> None:
    offer_store(rt, web, "exit_offer_percent=15")
    response = send(web, exit_beacon())
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == f"https://{SHOP}"
    popup = response.json["popup"]
    assert popup["kind"] == "offer" and popup["text"] == TEXT and popup["code"].startswith("CRQ-")
    [call] = creates(fake)
    spec = call["variables"]["basicCodeDiscount"]
    assert spec["code"] == popup["code"]
    assert spec["usageLimit"] == 1 and spec["appliesOncePerCustomer"] is True
    assert spec["customerGets"] == {"value": {"percentage": 0.15}, "items": {"all": True}}
    assert spec["context"] == {"all": "ALL"}
    assert "codeDiscountNode { id }" in call["query"] and "userErrors" in call["query"]
    [row] = codes(rt)
    assert (row.code, row.exit_sid, row.message_id, row.percent) == (popup["code"], "k3JxQ9vT2mWb7YzA", None, 15)
    assert row.cart_id is not None and row.platform_id in fake.shop(SHOP).discounts
    assert timedelta(hours=23) < row.ends_at - row.created_at <= timedelta(hours=24)  # exit_offer_window 1d
    # Repeats get the same code: the same session, and another session on the same cart.
    assert send(web, exit_beacon()).json["popup"]["code"] == popup["code"]
    assert send(web, exit_beacon(sid="OtherTabSession01")).json["popup"]["code"] == popup["code"]
    assert len(creates(fake)) == 1 and len(codes(rt)) == 1
    # A session without a cart (no items, no value) gets no code at all: it is asked for an email.
    cartless = send(web, beacon("exit", sid="NoCartSession0001")).json["popup"]
    assert cartless == {"kind": "capture"} and len(creates(fake)) == 1


def test_a_platform_outage_or_a_slow_platform_answers_capture_never_5xx(rt, web, fake: FakeShopify) -> None:
    offer_store(rt, web)
    fake.script.append(("503", None))
    response = send(web, exit_beacon())
    assert (response.status_code, response.json) == (200, {"popup": {"kind": "capture"}})
    calls = len(fake.graphql_calls())
    assert len(creates(fake)) == 1 and codes(rt) == []  # one try only: the shopper is waiting
    # Right after a failure the store is left alone: the next exits answer at once, without a call.
    assert send(web, exit_beacon(sid="SecondSession0001")).json == {"popup": {"kind": "capture"}}
    assert len(fake.graphql_calls()) == calls
    # Once the pause is over, a platform that does not answer in time costs the shopper ≤ the timeout.
    web.application.extensions["cartresq.exit_offers"]._failed_at.clear()
    fake.script.append(("sleep", 5.0))
    started = time.monotonic()
    response = send(web, exit_beacon(sid="ThirdSession00001"))
    assert (response.status_code, response.json) == (200, {"popup": {"kind": "capture"}})
    assert time.monotonic() - started < 4.5
    assert codes(rt) == []


def test_no_platform_access_or_a_spent_code_means_no_offer(rt, web, fake: FakeShopify) -> None:
    offer_store(rt, web)
    with rt.sessions.begin() as session:
        get_store(session, SHOP).needs_reauth_at = t.utcnow()
    assert send(web, exit_beacon()).json == {"popup": {"kind": "capture"}}
    assert creates(fake) == []
    with rt.sessions.begin() as session:
        get_store(session, SHOP).needs_reauth_at = None
    web.application.extensions["cartresq.exit_offers"]._failed_at.clear()
    code = send(web, exit_beacon()).json["popup"]["code"]
    with rt.sessions.begin() as session:
        session.scalars(select(t.DiscountCode)).one().ends_at = t.utcnow() - timedelta(minutes=1)
    # Expired: the session had its one code; no second one, and the expired one is cleaned up as usual.
    assert send(web, exit_beacon()).json == {"popup": {"kind": "capture"}}
    assert len(creates(fake)) == 1
    assert offers.cleanup_expired(rt.sessions, rt.shopify.offers) == {"deleted": 1, "used": 0, "failed": 0}
    assert not any(d["input"]["code"] == code for d in fake.shop(SHOP).discounts.values())


def test_exit_offer_percent_zero_shows_the_merchants_text_without_a_code(rt, web, fake: FakeShopify) -> None:
    offer_store(rt, web, "exit_offer_percent=0")
    assert send(web, exit_beacon()).json == {"popup": {"kind": "offer", "code": None, "text": TEXT}}
    assert creates(fake) == []
