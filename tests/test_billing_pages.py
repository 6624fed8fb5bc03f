"""The plan page says what applies to this store, and its buttons never end in a 500 or raw JSON: a store that
must reconnect is sent to reconnect, the trial is promised only while the store can still get one, the
Enterprise form shows only where it can be delivered, a held-back cart says why on its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from tests.conftest import make_settings
from tests.shopify_app_helpers import API_KEY, SECRET, fake, install  # noqa: F401
from tests.support import shopify
from tests.support.fake_shopify import FakeShopify, session_token

SHOP = shopify.SHOP
OPERATOR = {"Authorization": "Bearer billing-pages-operator-token"}


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeShopify) -> Iterator[Runtime]:  # noqa: F811
    runtime = build_runtime(make_settings(
        database_url, tmp_path, shopify_admin_base=fake.base, shopify_api_secret=SECRET, billing=True,
        admin_token=OPERATOR["Authorization"].split()[1],
    ))  # fmt: skip
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"}


def test_choosing_a_plan_while_the_store_must_reconnect_sends_the_merchant_to_reconnect(rt: Runtime, web) -> None:
    install(web, SHOP)
    with rt.sessions.begin() as session:  # the token refresh failed: platform calls stop (tokens.NeedsReauth)
        store = session.scalar(select(t.Store).where(t.Store.domain == SHOP))
        store.needs_reauth_at, store.reauth_reason = t.utcnow(), "token refresh failed: invalid_grant"
    # The operator's door (no session token to exchange): the Billing API call finds no usable token.
    page = web.post(f"/app/billing/subscribe?store={SHOP}", data={"plan": "starter"}, headers=OPERATOR)
    html = page.get_data(as_text=True)
    assert page.status_code == 409, html[:300]
    assert "Reconnect to Shopify first" in html and "Nothing was charged" in html
    assert f'href="/auth/shopify?shop={SHOP}"' in html and 'target="_top"' in html


def page(web) -> str:  # type: ignore[no-untyped-def]
    response = web.get(f"/app/billing?store={SHOP}", headers=OPERATOR)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_data(as_text=True)


def set_billing(rt: Runtime, **values: object) -> None:
    with rt.sessions.begin() as session:
        store_id = session.scalar(select(t.Store.id).where(t.Store.domain == SHOP))
        row = session.get(t.StoreBilling, store_id) or t.StoreBilling(store_id=store_id, provider="shopify")
        for key, value in values.items():
            setattr(row, key, value)
        session.add(row)


def test_the_plan_buttons_read_choose_a_plan(rt: Runtime, web) -> None:
    install(web, SHOP)
    html = page(web)
    assert ">Choose Starter</button>" in html and ">Choose Growth</button>" in html and "Choose to" not in html


def test_the_free_trial_is_promised_only_while_the_store_can_still_get_one(rt: Runtime, web) -> None:
    from datetime import timedelta

    install(web, SHOP)
    assert "Every plan starts with a 14-day free trial (one trial per store)" in page(web)
    set_billing(rt, plan="starter", status="cancelled", trial_ends_at=t.utcnow() - timedelta(days=40))
    html = page(web)  # subscribed once, cancelled, back: no second trial, so none is promised
    assert "14-day" not in html and "This store has had its free trial" in html
    set_billing(rt, plan="starter", status="trial", trial_ends_at=t.utcnow() + timedelta(days=3, hours=1))
    assert "Your free trial has 4 days left, whichever plan you choose" in page(web)


def test_without_an_operator_email_the_enterprise_form_is_hidden_and_a_post_gets_a_page(rt: Runtime, web) -> None:
    install(web, SHOP)
    assert not rt.settings.operator_email
    html = page(web)
    assert "/app/billing/enterprise" not in html and "Enterprise enquiries are not set up on this installation" in html
    response = web.post(f"/app/billing/enterprise?store={SHOP}", data={"email": "buyer@example.com", "message": "hello"},
                        headers=OPERATOR)  # fmt: skip
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "your message was not sent" in response.get_data(as_text=True)


def test_a_cart_held_back_by_the_plan_says_why_on_its_page(rt: Runtime, web) -> None:
    from datetime import timedelta
    from decimal import Decimal

    install(web, SHOP)
    now = t.utcnow()
    with rt.sessions.begin() as session:
        store_id = session.scalar(select(t.Store.id).where(t.Store.domain == SHOP))
        cart = t.Cart(store_id=store_id, email="held@example.com", currency="USD", subtotal=Decimal("10"), total=Decimal("10"),
                      status="abandoned", platform_updated_at=now, last_activity_at=now, abandoned_at=now, checkout_token="held-1")  # fmt: skip
        session.add(cart)
        session.flush()
        session.add(t.PlanCart(cart_id=cart.id, period_end=now + timedelta(days=30), store_id=store_id, outcome="held",
                               reason="no_plan", at=now))  # fmt: skip
        cart_id = cart.id
    html = web.get(f"/app/carts/{cart_id}?store={SHOP}", headers=OPERATOR).get_data(as_text=True)
    assert "abandoned" in html and "not started: no active plan" in html and "/app/billing" in html
