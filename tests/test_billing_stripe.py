"""Plans on hosted WooCommerce through Stripe, end to end over HTTP with the fake store and the fake Stripe:
no plan → checkout → trial → limit reached → held back → upgraded in the portal → resumed; a failed payment,
a cancellation; webhooks verified and deduplicated on the event id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.billing_mail import send_due_notices
from recovery.storage import tables as t
from recovery.billing import plans
from tests.conftest import ADMIN_TOKEN
from tests.loop_helpers import HOUR, abandon_all, now
from tests.support.fake_stripe import FakeStripe
from tests.support.fake_woocommerce import load
from tests.woo_helpers import Woo, make_woo

STRIPE_KEY, WEBHOOK_SECRET = "sk_test_cartresq_fake_0123456789", "whsec_cartresq_fake_0123456789"
PRICES = {"starter": "price_starter_test", "growth": "price_growth_test", "pro": "price_pro_test"}


@pytest.fixture
def stripe_fake() -> Iterator[FakeStripe]:
    server = FakeStripe(STRIPE_KEY, WEBHOOK_SECRET, {PRICES["starter"]: 2900, PRICES["growth"]: 7900, PRICES["pro"]: 17900}).start()
    yield server
    server.stop()


@pytest.fixture
def woo(database_url: str, tmp_path: Path, stripe_fake: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[Woo]:
    monkeypatch.setitem(plans.PLANS, "starter", plans.Plan("starter", "Starter", plans.PLANS["starter"].price, 2))
    monkeypatch.setitem(plans.PLANS, "growth", plans.Plan("growth", "Growth", plans.PLANS["growth"].price, 4))
    yield from make_woo(
        database_url, tmp_path, billing=True, stripe_secret_key=STRIPE_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_api_base=stripe_fake.base, stripe_prices=PRICES, admin_token=ADMIN_TOKEN,
    )


def operator(woo: Woo) -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def page(woo: Woo, path: str = "/app/billing") -> str:
    response = woo.client.get(f"{path}?store={woo.store_row().domain}", headers=operator(woo))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def abandon(woo: Woo, names: list[str]) -> dict[str, int]:
    base = load("order_updated__block_checkout_draft")
    for i, name in enumerate(names):
        order = {**base, "id": 9000 + abs(hash(name)) % 10000, "order_key": f"wc_order_{name}", "cart_hash": f"hash{name}",
                 "billing": {**base["billing"], "email": f"{name}@example.com"},
                 "date_modified_gmt": now().strftime("%Y-%m-%dT%H:%M:%S")}
        assert woo.deliver("order_updated__block_checkout_draft", **order).status_code == 200
    abandon_all(woo.rt, now() + 2 * HOUR)
    with woo.rt.sessions() as session:
        rows = session.execute(select(t.Cart.email, t.Cart.id)).all()
    return {email.split("@")[0]: cart_id for email, cart_id in rows if email and email.split("@")[0] in names}


def started(woo: Woo, cart_id: int) -> bool:
    with woo.rt.sessions() as session:
        return bool(session.scalars(select(t.RecoveryMessage.id).where(t.RecoveryMessage.cart_id == cart_id)).all())


def held(woo: Woo, cart_id: int) -> str | None:
    with woo.rt.sessions() as session:
        return session.scalar(select(t.PlanCart.reason).where(t.PlanCart.cart_id == cart_id, t.PlanCart.outcome == "held"))


def post(woo: Woo, stripe_fake: FakeStripe, event: dict[str, object], secret: str | None = None):  # type: ignore[no-untyped-def]
    body, headers = stripe_fake.signed(event, secret)
    return woo.client.post("/webhooks/stripe", data=body, headers=headers)


def test_checkout_trial_limit_held_back_upgrade_resume_cancel(woo: Woo, stripe_fake: FakeStripe) -> None:
    store = woo.store_row()
    assert "No active plan" in page(woo)
    carts = abandon(woo, ["ash"])
    assert not started(woo, carts["ash"]) and held(woo, carts["ash"]) == "no_plan"

    # Checkout in subscription mode for Starter's Price, 14-day trial, the store's id in the metadata.
    chosen = woo.client.post(f"/app/billing/subscribe?store={store.domain}", data={"plan": "starter"}, headers=operator(woo))
    assert chosen.status_code == 303 and chosen.headers["Location"].startswith("https://checkout.stripe.com/c/pay/cs_test")
    (session_id,) = stripe_fake.sessions
    form = stripe_fake.sessions[session_id]["_form"]
    assert (form["mode"], form["line_items[0][price]"], form["subscription_data[trial_period_days]"]) == (
        "subscription", PRICES["starter"], "14")
    assert form["subscription_data[metadata][cartresq_store_id]"] == str(store.id)

    created = stripe_fake.complete_checkout(session_id)
    assert post(woo, stripe_fake, created, secret="whsec_someone_else").status_code == 401  # nothing written
    assert post(woo, stripe_fake, created).get_json()["status"] == "accepted"
    assert post(woo, stripe_fake, created).get_json()["status"] == "duplicate"  # Stripe retries: same event id
    with woo.rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(t.WebhookDelivery).where(t.WebhookDelivery.platform == "stripe")) == 1
        billing = session.get(t.StoreBilling, store.id)
        assert (billing.plan, billing.status, billing.provider) == ("starter", "trial", "stripe")
        assert billing.customer_id and billing.period_end is not None
    assert "0 of 2" in page(woo)

    carts = abandon(woo, ["birch", "cedar", "dogwood"])
    assert sorted(started(woo, carts[n]) for n in ("birch", "cedar", "dogwood")) == [False, True, True]
    assert [held(woo, carts[n]) for n in ("birch", "cedar", "dogwood")].count("plan_limit") == 1
    assert "Plan limit reached: 2 of 2 carts" in page(woo, "/app/")
    assert send_due_notices(woo.rt, now()) == 1 and send_due_notices(woo.rt, now()) == 0  # once per period
    (mail,) = [m for m in woo.fake.sent if getattr(m, "categories", ()) == ("billing",)]  # the email channel
    assert mail.to == stripe_fake.customer_email and "reached its plan limit" in mail.subject

    # Choosing another plan while subscribed opens the portal, never a second Checkout (two charges, a new trial).
    sessions = len(stripe_fake.requests)
    again = woo.client.post(f"/app/billing/subscribe?store={store.domain}", data={"plan": "pro"}, headers=operator(woo))
    assert again.status_code == 303 and again.headers["Location"].startswith("https://billing.stripe.com/p/session/")
    assert not any("checkout" in str(r.get("path", "")) for r in stripe_fake.requests[sessions:])

    # The customer portal, then an upgrade there: same period, Growth's allowance at once.
    portal = woo.client.post(f"/app/billing/portal?store={store.domain}", headers=operator(woo))
    assert portal.status_code == 303 and portal.headers["Location"].startswith("https://billing.stripe.com/p/session/")
    assert stripe_fake.requests[-1]["form"]["customer"] == billing.customer_id
    (sub_id,) = stripe_fake.subscriptions
    assert post(woo, stripe_fake, stripe_fake.change_price(sub_id, PRICES["growth"])).get_json()["status"] == "accepted"
    carts = abandon(woo, ["elm"])
    assert started(woo, carts["elm"]) and held(woo, carts["elm"]) is None
    assert "2 of 4" not in page(woo) and "3 of 4" in page(woo)

    # A failed renewal: past due, still serving, the banner asks for a payment method.
    for event in stripe_fake.fail_payment(sub_id):
        assert post(woo, stripe_fake, event).status_code == 200
    assert "payment failed" in page(woo, "/app/")
    carts = abandon(woo, ["fir"])
    assert started(woo, carts["fir"])

    # Cancelled: new carts are held back; sequences already planned stay planned.
    assert post(woo, stripe_fake, stripe_fake.cancel(sub_id)).get_json()["status"] == "accepted"
    carts = abandon(woo, ["gum"])
    assert not started(woo, carts["gum"]) and held(woo, carts["gum"]) == "no_plan"
    with woo.rt.sessions() as session:
        elm = session.scalar(select(t.Cart.id).where(t.Cart.email == "elm@example.com"))
        assert "planned" in session.scalars(select(t.RecoveryMessage.status).where(t.RecoveryMessage.cart_id == elm)).all()


def test_bad_stripe_bodies_are_4xx_and_write_nothing(woo: Woo, stripe_fake: FakeStripe) -> None:
    assert woo.client.post("/webhooks/stripe", data=b"{}", headers={"Content-Type": "application/json"}).status_code == 401
    body, headers = stripe_fake.signed({"id": "evt_x"})  # signed, but not an event
    assert woo.client.post("/webhooks/stripe", data=body, headers=headers).status_code == 400
    unknown = {"id": "evt_other", "object": "event", "created": 1, "type": "charge.refunded", "data": {"object": {}}}
    assert post(woo, stripe_fake, unknown).get_json()["status"] == "ignored"
    with woo.rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(t.WebhookDelivery).where(t.WebhookDelivery.platform == "stripe")) == 0


def test_enterprise_contact_form_emails_the_operator(database_url: str, tmp_path: Path, stripe_fake: FakeStripe) -> None:
    for woo in make_woo(database_url, tmp_path, billing=True, stripe_secret_key=STRIPE_KEY, stripe_api_base=stripe_fake.base,
                        stripe_prices=PRICES, admin_token=ADMIN_TOKEN, operator_email="sales@cartresq.example.com",
                        outbox=True):
        url = f"/app/billing/enterprise?store={woo.store_row().domain}"
        assert woo.client.post(url, data={"email": "not an address", "message": "hi"}, headers=operator(woo)).status_code == 400
        assert woo.client.post(url, data={"email": "buyer@example.com", "message": "x" * 2001}, headers=operator(woo)).status_code == 400
        sent = woo.client.post(url, data={"email": "buyer@example.com", "message": "We run 40,000 carts a month."},
                               headers=operator(woo))
        assert sent.status_code == 200
        (mail,) = (tmp_path / "outbox" / "billing" / "email").glob("*.eml")
        text = mail.read_text()
        assert "sales@cartresq.example.com" in text and "Reply-To: buyer@example.com" in text and "40,000 carts" in text
