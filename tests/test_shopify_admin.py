"""Admin GraphQL: throttling, retries, discount codes (creation shape, restore link, cleanup)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from connectors.shopify.admin import AdminClient, AdminError
from recovery.sequence import offers
from recovery.storage import tables as t
from tests.conftest import drain
from tests.loop_helpers import HOUR, abandon_all, now
from tests.shopify_app_helpers import SECRET, fake, install, rt, web  # noqa: F401
from tests.support import shopify
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP

QUERY = "query OurWebhooks { webhookSubscriptions(first: 100) { nodes { id topic } } }"


def client(rt, delays: list[float], **kw) -> AdminClient:  # type: ignore[no-untyped-def]
    return AdminClient(rt.shopify.config, rt.shopify.tokens, sleep=delays.append, **kw)


def test_throttled_then_429_then_success_backs_off_as_told(rt, web, fake: FakeShopify) -> None:
    install(web)
    calls = len(fake.graphql_calls())  # install itself read the shop's domains
    fake.script.extend([("throttled", None), ("429", 3)])
    delays: list[float] = []
    data = client(rt, delays).execute(SHOP, QUERY)
    assert "webhookSubscriptions" in data
    assert len(fake.graphql_calls()) == calls + 3
    # THROTTLED: (requested 10 − available 2) / restore 50 per s; 429: its Retry-After. The other
    # waits are the cost budget: 2 points left, restored at 50/s, before the next call.
    assert delays[0] == pytest.approx(0.16) and 3.0 in delays
    assert all(d == 3.0 or d <= 0.16 + 1e-6 for d in delays)


def test_transient_errors_retry_with_jittered_backoff_permanent_ones_do_not(rt, web, fake: FakeShopify) -> None:
    install(web)
    fake.script.extend([("503", None), ("502", None)])
    delays: list[float] = []
    assert "webhookSubscriptions" in client(rt, delays).execute(SHOP, QUERY)
    assert len(delays) == 2 and 0 <= delays[0] <= 0.5 and 0 <= delays[1] <= 1.0
    calls = len(fake.graphql_calls())
    with pytest.raises(AdminError) as error:
        client(rt, delays).execute(SHOP, "query { nonsense }")
    assert error.value.permanent and len(fake.graphql_calls()) == calls + 1
    fake.script.extend([("503", None)] * 3)
    with pytest.raises(AdminError) as error:
        client(rt, delays, max_attempts=3).execute(SHOP, QUERY)
    assert not error.value.permanent


def offer_cart(rt, web):  # type: ignore[no-untyped-def]
    install(web)
    with rt.sessions.begin() as session:
        store = session.scalar(select(t.Store))
        store.settings = {**store.settings, "holdout_percent": 0, "offer_percent": 15, "offer_window": 86400}
    shopify.post(web, "checkouts_update", secret=SECRET)
    drain(rt)
    abandon_all(rt, now() + 2 * HOUR)
    with rt.sessions.begin() as session:
        message = session.scalars(select(t.RecoveryMessage).order_by(t.RecoveryMessage.step)).first()
        message.template = "offer"
        return message.id


def test_an_offer_message_gets_a_unique_single_use_code_applied_by_its_restore_link(rt, web, fake: FakeShopify) -> None:
    message_id = offer_cart(rt, web)
    with rt.sessions.begin() as session:
        message = session.get(t.RecoveryMessage, message_id)
        store, cart = session.get(t.Store, message.store_id), session.get(t.Cart, message.cart_id)
        email = rt.sender.composer.compose(store, cart, message)
        again = rt.sender.composer.compose(store, cart, message)  # a retried send reuses the code
    created = [c for c in fake.graphql_calls() if "discountCodeBasicCreate" in c["body"]["query"]]
    assert len(created) == 1
    spec = created[0]["body"]["variables"]["basicCodeDiscount"]
    assert spec["usageLimit"] == 1 and spec["appliesOncePerCustomer"] is True
    assert spec["customerGets"] == {"value": {"percentage": 0.15}, "items": {"all": True}}
    assert spec["context"] == {"all": "ALL"} and spec["code"].startswith("CRQ-")
    with rt.sessions() as session:
        row = session.scalar(select(t.DiscountCode))
    assert row.code == spec["code"] and row.platform_id in fake.shop(SHOP).discounts
    assert timedelta(hours=23) < row.ends_at - row.created_at <= timedelta(hours=24)
    assert spec["code"] in email.text and spec["code"] in again.text
    restore = email.text.split("/r/", 1)[1].split()[0].rstrip(")>")
    response = web.get(f"/r/{restore}")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"https://{SHOP}/discount/{spec['code']}?redirect=")
    assert "/checkouts/" in unquote(location.split("redirect=", 1)[1])


def test_without_platform_access_the_offer_step_is_a_plain_reminder(rt, web, fake: FakeShopify) -> None:
    message_id = offer_cart(rt, web)
    with rt.sessions.begin() as session:
        session.scalar(select(t.Store)).needs_reauth_at = t.utcnow()
    with rt.sessions.begin() as session:
        message = session.get(t.RecoveryMessage, message_id)
        email = rt.sender.composer.compose(session.get(t.Store, message.store_id), session.get(t.Cart, message.cart_id), message)
    assert "CRQ-" not in email.text
    assert not [c for c in fake.graphql_calls() if "discountCodeBasicCreate" in c["body"]["query"]]


def test_expired_unused_codes_are_deleted_used_ones_kept(rt, web, fake: FakeShopify) -> None:
    message_id = offer_cart(rt, web)
    with rt.sessions.begin() as session:
        message = session.get(t.RecoveryMessage, message_id)
        rt.sender.composer.compose(session.get(t.Store, message.store_id), session.get(t.Cart, message.cart_id), message)
    with rt.sessions.begin() as session:
        row = session.scalar(select(t.DiscountCode))
        row.ends_at = t.utcnow() - timedelta(minutes=1)
        gid = row.platform_id
    assert offers.cleanup_expired(rt.sessions, rt.shopify.offers) == {"deleted": 1, "used": 0, "failed": 0}
    assert gid not in fake.shop(SHOP).discounts
    with rt.sessions() as session:
        assert session.scalar(select(t.DiscountCode)).outcome == "deleted"
    assert offers.cleanup_expired(rt.sessions, rt.shopify.offers) == {"deleted": 0, "used": 0, "failed": 0}


def test_a_slow_discount_call_holds_no_lock_an_order_needs(rt, web, fake: FakeShopify) -> None:
    import threading

    from tests.loop_helpers import claim
    from tests.support.locks import store_rows_locked_or_raise

    message_id = offer_cart(rt, web)
    assert claim(rt, now() + 9 * HOUR) == [message_id]
    arrived, release = threading.Event(), threading.Event()
    fake.script.append(("hold", (arrived, release)))  # Shopify answers the discount call only when told
    outcome: dict[int, str] = {}
    sending = threading.Thread(target=lambda: outcome.update(rt.sender.send_batch(rt.sessions, [message_id])))
    sending.start()
    try:
        assert arrived.wait(30), "the send job never called Shopify"
        # While the call is in flight, what recording an order takes (the store row, for update) is free at
        # once: taken without waiting, it raises if the send job holds it (or SQLite's write lock).
        with store_rows_locked_or_raise(rt.engine):
            pass
    finally:
        release.set()
        sending.join(30)
    assert outcome == {message_id: "sent"}
    with rt.sessions() as session:
        code = session.scalar(select(t.DiscountCode).where(t.DiscountCode.message_id == message_id))
    assert code is not None and code.code.startswith("CRQ-")


def test_with_discount_arms_the_shoppers_drawn_arm_is_the_code_and_is_recorded(rt, web, fake: FakeShopify) -> None:
    message_id = offer_cart(rt, web)
    with rt.sessions.begin() as session:
        store = session.scalar(select(t.Store))
        store.settings = {**store.settings, "offer_arms": [10, 20]}  # both arms carry a code
    with rt.sessions.begin() as session:
        message = session.get(t.RecoveryMessage, message_id)
        store, cart = session.get(t.Store, message.store_id), session.get(t.Cart, message.cart_id)
        email = rt.sender.composer.compose(store, cart, message)
        again = rt.sender.composer.compose(store, cart, message)
    with rt.sessions() as session:
        [assignment] = session.scalars(
            select(t.ExperimentAssignment).where(t.ExperimentAssignment.experiment.like("discount:%"))
        ).all()
        code = session.scalar(select(t.DiscountCode))
    arm = int(assignment.variant)
    assert arm in (10, 20) and code.percent == arm and assignment.unit and "@" not in assignment.unit
    assert 0.05 < assignment.propensity < 0.95  # P(this arm) when drawn, for off-policy evaluation (0125)
    created = [c for c in fake.graphql_calls() if "discountCodeBasicCreate" in c["body"]["query"]]
    assert len(created) == 1  # drawn once; a retried send reuses the arm and the code
    assert created[0]["body"]["variables"]["basicCodeDiscount"]["customerGets"]["value"] == {"percentage": arm / 100}
    assert code.code in email.text and code.code in again.text


def test_a_shopper_on_the_zero_arm_gets_a_plain_reminder(rt, web, fake: FakeShopify) -> None:
    from recovery.sequence import discounts, offers

    message_id = offer_cart(rt, web)
    with rt.sessions.begin() as session:
        store = session.scalar(select(t.Store))
        store.settings = {**store.settings, "offer_arms": [0, 10]}
        message = session.get(t.RecoveryMessage, message_id)
        cart = session.get(t.Cart, message.cart_id)
        segment = discounts.segment(float(cart.total), returning=False)
        session.add(t.ExperimentAssignment(store_id=store.id, cart_id=cart.id, experiment=f"discount:{segment}",
                                           variant="0", assigned_at=t.utcnow()))  # fmt: skip
        message.status = "queued"
    assert offers.prepare(rt.sessions, rt.sender.composer.offers, [message_id]) == 0
    with rt.sessions.begin() as session:
        message = session.get(t.RecoveryMessage, message_id)
        email = rt.sender.composer.compose(session.get(t.Store, message.store_id), session.get(t.Cart, message.cart_id), message)
    assert "CRQ-" not in email.text
    assert not [c for c in fake.graphql_calls() if "discountCodeBasicCreate" in c["body"]["query"]]
    with rt.sessions() as session:  # the recorded arm was used, not a second draw
        assert session.scalar(select(func.count()).select_from(t.ExperimentAssignment)
                              .where(t.ExperimentAssignment.experiment.like("discount:%"))) == 1  # fmt: skip
