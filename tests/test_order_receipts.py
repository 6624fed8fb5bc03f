"""No message after an acknowledged order: an order webhook answered 2xx but not yet applied by any worker
holds every reminder it matches, by each join key, in the pre-send check and in the last-mile statement
that marks a message `sending` (recovery/intake/receipts.py). SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime
from recovery.sending.channels import FakeChannel
from recovery.storage import tables as t
from tests.conftest import drain
from tests.loop_helpers import HOUR, abandon_all, loop_runtime, messages, now, send_due
from tests.support import shopify

KEYS = ("checkout_token", "cart_token", "email", "phone")


class PostingChannel(FakeChannel):
    """A fake provider that, on its first send, has an order webhook acknowledged (e.g. the other shopper
    pays at that very moment)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_first_send: Any = None

    def send(self, message: Any) -> Any:
        hook, self.on_first_send = self.on_first_send, None
        result = super().send(message)
        if hook is not None:
            hook(message)
        return result


@pytest.fixture
def fake() -> PostingChannel:
    return PostingChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel) -> Iterator[Runtime]:
    yield from loop_runtime(database_url, tmp_path, fake)


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def other_checkout() -> dict[str, Any]:
    """A second shopper: every join key different from the fixture's."""
    p = copy.deepcopy(shopify.load("checkouts_update"))
    p.update(id=37214586900999, token="b0b0" * 8, cart_token="other-cart-token", email="ines.varga@example.com",
             phone="+18285550999", sms_marketing_phone="+18285550999")
    for part in ("customer", "shipping_address", "billing_address"):
        if isinstance(p.get(part), dict):
            p[part].update(phone="+18285550999", email="ines.varga@example.com", id=777000111)
    return p


def order_matching(checkout: dict[str, Any], key: str) -> dict[str, Any]:
    """An order of a third party, except for one join key it shares with `checkout`."""
    stamp = now().isoformat()
    p = copy.deepcopy(shopify.load("orders_create"))
    p.update(id=990001, checkout_token="unrelated-checkout", cart_token=None, email="someone.else@example.com",
             contact_email=None, phone=None, created_at=stamp, processed_at=stamp)
    p["customer"] = {**p.get("customer", {}), "id": 5550001, "email": None, "phone": None}
    source = {"checkout_token": checkout["token"], "cart_token": checkout["cart_token"],
              "email": checkout["email"].upper(), "phone": checkout["phone"]}  # the email in another case
    p[key] = source[key]
    return p


@pytest.mark.parametrize("key", KEYS)
def test_acknowledged_unprocessed_order_holds_the_send(rt: Runtime, client, fake: FakeChannel, key: str) -> None:
    checkout = shopify.load("checkouts_update")
    shopify.post(client, "checkouts_update", payload=checkout)
    drain(rt)
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    answer = shopify.post(client, "orders_create", payload=order_matching(checkout, key))
    assert answer.status_code == 200  # acknowledged; no worker has run it
    assert send_due(rt, at + 5 * HOUR) == ["rescheduled: order_receipt_pending"]
    assert fake.sent == []
    drain(rt)  # the worker applies the order: the held message is cancelled for good
    assert messages(rt, cart_id)[0].status == "cancelled"
    assert send_due(rt, at + 100 * HOUR) == [] and fake.sent == []
    with rt.sessions() as session:  # applied: the receipt's keys are gone
        assert session.scalars(select(t.WebhookDelivery.order_email_hash).where(
            t.WebhookDelivery.topic == "orders/create")).all() == [None]


@pytest.mark.parametrize("key", KEYS)
def test_order_acknowledged_between_the_check_and_the_hand_over_holds_the_send(
    rt: Runtime, client, fake: PostingChannel, key: str
) -> None:
    first, second = shopify.load("checkouts_update"), other_checkout()
    shopify.post(client, "checkouts_update", payload=first)
    shopify.post(client, "checkouts_update", payload=second)
    drain(rt)
    at = now() + 2 * HOUR
    assert len(abandon_all(rt, at)) == 2
    # While the batch's first message is with the provider, the other shopper's order is acknowledged:
    # the batch's pre-send check has passed, so only the last-mile statement can see it.
    def other_shopper_pays(sent: Any) -> None:
        other = second if sent.to == first["email"] else first
        shopify.post(client, "orders_create", payload=order_matching(other, key))

    fake.on_first_send = other_shopper_pays
    outcomes = send_due(rt, at + 5 * HOUR)
    assert sorted(outcomes) == ["rescheduled: order_receipt_pending", "sent"]
    assert len(fake.sent) == 1


def test_a_rejected_order_receipt_cancels_instead_of_holding(rt: Runtime, client, fake: FakeChannel) -> None:
    checkout = shopify.load("checkouts_update")
    shopify.post(client, "checkouts_update", payload=checkout)
    drain(rt)
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    order = order_matching(checkout, "email")
    del order["id"]  # the worker rejects it; the purchase was acknowledged all the same
    shopify.post(client, "orders_create", payload=order)
    drain(rt)
    assert send_due(rt, at + 5 * HOUR) == ["cancelled: shopper ordered (order receipt not applied)"]
    assert fake.sent == []


def test_an_older_order_receipt_does_not_hold_a_newer_cart(rt: Runtime, client, fake: FakeChannel) -> None:
    checkout = shopify.load("checkouts_update")
    shopify.post(client, "orders_create", payload=order_matching(checkout, "email"))  # never applied
    later = now().isoformat()
    shopify.post(client, "checkouts_update", payload={**checkout, "updated_at": later})
    with rt.sessions.begin() as session:  # apply only the checkout: the order stays an unapplied receipt
        from connectors import normalize
        from recovery.intake import deliveries as intake

        for pk in session.scalars(select(t.WebhookDelivery.id).where(t.WebhookDelivery.topic == "checkouts/update")):
            intake.process_delivery(session, pk, normalize, rt.timing)
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    assert send_due(rt, at + 5 * HOUR) == ["sent"]


def test_woocommerce_paid_order_receipts_carry_keys_and_carts_in_progress_do_not() -> None:
    import json

    from connectors.receipts import order_keys
    from connectors.woocommerce.normalize import checkout_token
    from recovery.intake.receipts import email_digest, phone_digest

    fixtures = Path(__file__).parent / "fixtures" / "woocommerce"
    paid = json.loads((fixtures / "order_updated__processing.json").read_text())
    keys = order_keys("woocommerce", "order.updated", paid)
    assert keys == {"order_checkout_token": checkout_token(str(paid["id"])), "order_cart_token": None,
                    "order_email_hash": email_digest(paid["billing"]["email"]),
                    "order_phone_hash": phone_digest(paid["billing"]["phone"])}
    assert order_keys("woocommerce", "order.updated", {**paid, "status": "pending"}) is None
    assert order_keys("shopify", "checkouts/update", {"checkout_token": "x"}) is None
    # Untrusted shapes never raise on the hot path; a token no column can hold is left out.
    odd = order_keys("shopify", "orders/paid", {"checkout_token": "x" * 300, "customer": [], "email": 5})
    assert odd == {"order_checkout_token": None, "order_cart_token": None, "order_email_hash": None,
                   "order_phone_hash": None}


@pytest.mark.parametrize("key", KEYS)
def test_an_order_is_acknowledged_only_after_a_reminder_already_under_way_reached_its_provider(
    rt: Runtime, client, key: str
) -> None:
    """A message marked `sending` before the order's receipt existed may still be on its way to the provider:
    the order's 2xx waits until it is handed over, so no reminder reaches a provider after the purchase was
    acknowledged (the drill counted one under load). Matched by any join key, the email in another case."""
    import threading
    import time

    checkout = shopify.load("checkouts_update")
    shopify.post(client, "checkouts_update", payload=checkout)
    drain(rt)
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(rt, at)
    with rt.sessions.begin() as session:  # the sender marked it and is calling the provider right now
        session.execute(t.RecoveryMessage.__table__.update().where(t.RecoveryMessage.cart_id == cart_id,
                                                                   t.RecoveryMessage.step == 1).values(status="sending"))
    handed: list[float] = []

    def provider_accepts() -> None:
        time.sleep(0.5)
        with rt.sessions.begin() as session:
            session.execute(t.RecoveryMessage.__table__.update().where(
                t.RecoveryMessage.cart_id == cart_id, t.RecoveryMessage.status == "sending").values(status="sent"))
        handed.append(time.monotonic())

    sender = threading.Thread(target=provider_accepts)
    sender.start()
    answer = shopify.post(client, "orders_create", payload=order_matching(checkout, key))
    acknowledged = time.monotonic()
    sender.join(5)
    assert answer.status_code == 200
    assert handed and acknowledged >= handed[0]


def test_an_order_with_nothing_under_way_is_acknowledged_at_once(rt: Runtime, client) -> None:
    from recovery.intake.receipts import wait_for_hand_overs

    checkout = shopify.load("checkouts_update")
    shopify.post(client, "checkouts_update", payload=checkout)
    drain(rt)
    abandon_all(rt, now() + 2 * HOUR)  # planned, not under way
    assert shopify.post(client, "orders_create", payload=order_matching(checkout, "checkout_token")).status_code == 200
    with rt.sessions() as session:
        delivery = session.scalars(select(t.WebhookDelivery.id).where(t.WebhookDelivery.topic == "orders/create")).one()
    assert wait_for_hand_overs(rt.engine, delivery) == 0
