"""Plans on Shopify, end to end over HTTP with the fake Admin API: no plan → trial → subscribed → limit
reached → held back → upgraded → resumed; cancellation and freezing stop new sequences."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app import create_app
from app.billing_mail import send_due_notices
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.billing import plans
from tests.conftest import drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, now, set_store
from tests.shopify_app_helpers import API_KEY, SECRET, fake, install  # noqa: F401
from tests.support import shopify
from tests.support.fake_shopify import FakeShopify, session_token

SHOP = shopify.SHOP


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeShopify) -> Iterator[Runtime]:  # noqa: F811
    runtime = build_runtime(make_settings(
        database_url, tmp_path, shopify_admin_base=fake.base, shopify_api_secret=SECRET, billing=True,
    ))  # fmt: skip
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


@pytest.fixture
def small_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starter 2 carts, Growth 4: the limits are reached with a handful of carts."""
    monkeypatch.setitem(plans.PLANS, "starter", plans.Plan("starter", "Starter", plans.PLANS["starter"].price, 2))
    monkeypatch.setitem(plans.PLANS, "growth", plans.Plan("growth", "Growth", plans.PLANS["growth"].price, 4))


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"}


def abandon_carts(web, rt: Runtime, names: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A checkout per name through the signed webhook, then the abandoner: {name: cart id}."""
    base = shopify.load("checkouts_update")
    for name in names:
        payload = {**base, "token": f"tok-{name}", "cart_token": f"cart-{name}", "id": abs(hash(name)) % 10**12,
                   "email": f"{name}@example.com", "updated_at": now().isoformat(), "phone": None, "sms_marketing_phone": None}
        payload["customer"] = {**base["customer"], "id": abs(hash(name)) % 10**9, "email": f"{name}@example.com", "phone": None}
        assert shopify.post(web, "checkouts_update", payload=payload, secret=SECRET).status_code == 200
    drain(rt)
    abandon_all(rt, now() + 2 * HOUR)
    with rt.sessions() as session:
        rows = session.execute(select(t.Cart.checkout_token, t.Cart.id)).all()
    return {token.removeprefix("tok-"): cart_id for token, cart_id in rows if token.removeprefix("tok-") in names}


def planned(rt: Runtime, cart_id: int) -> int:
    with rt.sessions() as session:
        return len(session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.cart_id == cart_id)).all())


def outcome(rt: Runtime, cart_id: int) -> tuple[str, str | None] | None:
    with rt.sessions() as session:
        row = session.execute(select(t.PlanCart.outcome, t.PlanCart.reason).where(t.PlanCart.cart_id == cart_id)).first()
        return tuple(row) if row else None  # type: ignore[return-value]


def subscribe(web, fake: FakeShopify, plan: str) -> str:  # type: ignore[no-untyped-def]  # noqa: F811
    """The merchant picks `plan` and approves it on Shopify's page; returns the subscription id."""
    page = web.post("/app/billing/subscribe", data={"plan": plan}, headers=bearer())
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    confirm = html.split('class="confirm" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert confirm.startswith(fake.base) and 'target="_top"' in html
    back = httpx.get(confirm, headers={"Host": SHOP})  # Shopify's approval page, then its returnUrl
    assert back.status_code == 302
    assert back.headers["location"].startswith(f"https://admin.shopify.com/store/velvet-fern/apps/cartresq/app/billing")
    return fake.shop(SHOP).subscriptions[-1]["id"]


def post_subscription(web, payload: dict[str, object]):  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode()
    return web.post("/webhooks/shopify", data=body, headers=shopify.headers(body, "app_subscriptions/update", secret=SECRET))


def webhook(web, rt: Runtime, fake: FakeShopify, sub_id: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    response = post_subscription(web, fake.subscription_webhook(SHOP, sub_id))
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"
    drain(rt)


def test_trial_subscribe_limit_held_back_upgrade_resume(rt: Runtime, web, fake: FakeShopify, small_plans: None) -> None:  # noqa: F811
    install(web, SHOP)
    set_store(rt, holdout_percent=0)
    # No plan yet: the picker, and carts are recorded without a sequence.
    page = web.get("/app/billing", headers=bearer())
    assert page.status_code == 200 and "No active plan" in page.get_data(as_text=True)
    carts = abandon_carts(web, rt, ["ash"])
    assert planned(rt, carts["ash"]) == 0 and outcome(rt, carts["ash"]) == ("held", "no_plan")

    # Starter with a 14-day trial, test charge off (not a development store, SHOPIFY_BILLING_TEST unset).
    starter = subscribe(web, fake, "starter")
    call = next(c for c in fake.graphql_calls(SHOP) if "appSubscriptionCreate" in c["body"]["query"])["body"]["variables"]
    assert call["trialDays"] == 14 and call["test"] is False and call["name"] == "CartResQ Starter"
    assert call["lineItems"] == [{"plan": {"appRecurringPricingDetails": {
        "price": {"amount": "29", "currencyCode": "USD"}, "interval": "EVERY_30_DAYS"}}}]
    webhook(web, rt, fake, starter)
    page = web.get("/app/billing", headers=bearer()).get_data(as_text=True)  # reads activeSubscriptions
    assert "<strong>Starter</strong> (trial" in page and "0 of 2" in page
    with rt.sessions() as session:
        billing = session.get(t.StoreBilling, session.scalar(select(t.Store.id)))
        assert billing.status == "trial" and billing.period_end is not None and billing.contact_email

    # Three carts, two slots: the oldest two start, the third is held back; the banner and the email say so.
    carts = abandon_carts(web, rt, ["birch", "cedar", "dogwood"])
    started = [name for name in ("birch", "cedar", "dogwood") if planned(rt, carts[name])]
    assert len(started) == 2
    (held,) = {"birch", "cedar", "dogwood"} - set(started)
    assert outcome(rt, carts[held]) == ("held", "plan_limit")
    page = web.get("/app/", headers=bearer()).get_data(as_text=True)
    assert "Plan limit reached: 2 of 2 carts" in page and "1 abandoned carts held back" in page
    dashboard = web.get("/", headers=bearer()).get_data(as_text=True)
    assert "Held back by the plan<b>2</b>" in dashboard  # ash (no plan) and this one
    assert send_due_notices(rt, now()) == 1 and send_due_notices(rt, now()) == 0  # once per period
    (mail,) = (rt.settings.outbox_dir / "billing" / "email").glob("*.eml")
    assert "reached its plan limit" in mail.read_text() and fake.shop(SHOP).email in mail.read_text()

    # Upgrade: Growth replaces Starter at once; the old subscription's CANCELLED arrives and changes nothing.
    growth = subscribe(web, fake, "growth")
    webhook(web, rt, fake, growth)
    webhook(web, rt, fake, starter)
    carts = abandon_carts(web, rt, ["elm"])
    assert planned(rt, carts["elm"]) > 0 and outcome(rt, carts["elm"]) == ("counted", None)
    assert "Plan limit reached" not in web.get("/app/", headers=bearer()).get_data(as_text=True)

    # Frozen (shop closed or unpaid): no new sequence; the one already planned stays.
    fake.set_subscription_status(SHOP, growth, "FROZEN")
    webhook(web, rt, fake, growth)
    carts = abandon_carts(web, rt, ["fir"])
    assert planned(rt, carts["fir"]) == 0 and outcome(rt, carts["fir"]) == ("held", "no_plan")
    with rt.sessions() as session:
        elm = session.scalar(select(t.Cart.id).where(t.Cart.checkout_token == "tok-elm"))
        assert session.scalars(select(t.RecoveryMessage.status).where(t.RecoveryMessage.cart_id == elm)).all()


def test_development_stores_and_billing_test_get_test_charges(rt: Runtime, web, fake: FakeShopify) -> None:  # noqa: F811
    install(web, SHOP)
    fake.shop(SHOP).partner_development = True
    subscribe(web, fake, "pro")
    call = next(c for c in fake.graphql_calls(SHOP) if "appSubscriptionCreate" in c["body"]["query"])["body"]["variables"]
    assert call["test"] is True and call["lineItems"][0]["plan"]["appRecurringPricingDetails"]["price"]["amount"] == "179"


def test_bad_plan_is_a_400_and_enterprise_is_not_self_serve(rt: Runtime, web, fake: FakeShopify) -> None:  # noqa: F811
    install(web, SHOP)
    for plan in ("enterprise", "platinum", ""):
        assert web.post("/app/billing/subscribe", data={"plan": plan}, headers=bearer()).status_code == 400
    assert not [c for c in fake.graphql_calls(SHOP) if "appSubscriptionCreate" in c["body"]["query"]]


def test_billing_off_hides_the_page_and_never_limits(database_url: str, tmp_path: Path, fake: FakeShopify) -> None:  # noqa: F811
    runtime = build_runtime(make_settings(database_url, tmp_path, shopify_admin_base=fake.base, shopify_api_secret=SECRET))
    try:
        web = create_app(runtime=runtime).test_client()
        install(web, SHOP)
        set_store(runtime, holdout_percent=0)
        assert web.get("/app/billing", headers=bearer()).status_code == 404
        assert "Plan" not in web.get("/app/", headers=bearer()).get_data(as_text=True).split("<main>")[0]
        carts = abandon_carts(web, runtime, ["gum"])
        assert planned(runtime, carts["gum"]) > 0 and outcome(runtime, carts["gum"]) is None
    finally:
        runtime.close()


def test_subscription_webhook_payload_shape_is_checked(rt: Runtime, web, fake: FakeShopify) -> None:  # noqa: F811
    install(web, SHOP)
    bad = post_subscription(web, {"app_subscription": {"name": "CartResQ Pro"}})
    assert bad.status_code == 200  # stored, then rejected by the worker as a bad payload (never retried)
    drain(rt)
    with rt.sessions() as session:
        delivery = session.scalars(select(t.WebhookDelivery).where(t.WebhookDelivery.topic == "app_subscriptions/update")).one()
        assert delivery.outcome == "rejected" and session.scalar(select(t.StoreBilling)) is None
    assert json.dumps(fake.shop(SHOP).subscriptions) == "[]"


def test_a_webhook_in_the_same_second_as_an_api_read_is_not_stale(rt: Runtime, web, fake: FakeShopify) -> None:  # noqa: F811
    """Shopify's `updated_at` has whole seconds; a read of activeSubscriptions once stamped the row with our
    own clock's "now", so a FROZEN update from the same second was dropped as older (the store kept serving)."""
    import time

    install(web, SHOP)
    starter = subscribe(web, fake, "starter")
    webhook(web, rt, fake, starter)
    assert web.get("/app/billing", headers=bearer()).status_code == 200  # reads activeSubscriptions
    fake.set_subscription_status(SHOP, starter, "FROZEN")
    payload = fake.subscription_webhook(SHOP, starter)
    payload["app_subscription"]["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # this second
    assert post_subscription(web, payload).get_json()["status"] == "accepted"
    drain(rt)
    with rt.sessions() as session:
        assert session.get(t.StoreBilling, session.scalar(select(t.Store.id))).status == "frozen"
