"""Reconciliation after a webhook outage: what only exists in Shopify ends up in our carts and orders."""

from __future__ import annotations

from sqlalchemy import select

from connectors.shopify import reconcile
from recovery.storage import tables as t
from tests.loop_helpers import HOUR, abandon_all, messages, now
from tests.shopify_app_helpers import fake, install, rt, store, web  # noqa: F401
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP


def checkout(n: int, email: str, updated: str) -> dict:  # type: ignore[type-arg]
    money = lambda amount: {"presentmentMoney": {"amount": amount, "currencyCode": "USD"}}  # noqa: E731
    return {
        "id": f"gid://shopify/AbandonedCheckout/{n}",
        "abandonedCheckoutUrl": f"https://{SHOP}/61873294471/checkouts/ac/tok{n}abc/recover?key=k{n}",
        "createdAt": "2026-11-27T10:00:00Z",
        "updatedAt": updated,
        "completedAt": None,
        "customer": {"id": f"gid://shopify/Customer/{n}", "email": email, "phone": None, "firstName": "Ada",
                     "lastName": "Lovelace", "locale": "en", "emailMarketingConsent": {"marketingState": "SUBSCRIBED"},
                     "smsMarketingConsent": None},
        "shippingAddress": {"firstName": "Ada", "countryCodeV2": "US", "provinceCode": "NY"},
        "subtotalPriceSet": money("40.00"),
        "totalPriceSet": money("44.00"),
        "lineItems": {"nodes": [{"title": "Wool socks", "variantTitle": "M", "quantity": 2, "sku": "SOCK-M",
                                 "variant": {"id": "gid://shopify/ProductVariant/7"}, "product": {"id": "gid://shopify/Product/3"},
                                 "originalUnitPriceSet": money("20.00")}]},
    }


def test_checkouts_and_orders_missed_by_webhooks_are_filled_in(rt, web, fake: FakeShopify) -> None:
    install(web)
    with rt.sessions.begin() as session:
        session.scalar(select(t.Store)).settings = {"holdout_percent": 0}
    recent = (t.utcnow() - HOUR).strftime("%Y-%m-%dT%H:%M:%SZ")
    state = fake.shop(SHOP)
    state.checkouts = [checkout(1, "ada@example.com", recent), checkout(2, "grace@example.com", recent)]
    state.orders = [{
        "id": "gid://shopify/Order/900", "name": "#1001", "email": "ada@example.com", "phone": None,
        "createdAt": recent, "processedAt": recent, "cancelledAt": None, "checkoutToken": "tok1abc", "cartToken": None,
        "sourceName": "web", "customer": {"id": "gid://shopify/Customer/1", "email": "ada@example.com", "phone": None,
                                          "firstName": "Ada", "lastName": "Lovelace"},
        "totalPriceSet": {"presentmentMoney": {"amount": "44.00", "currencyCode": "USD"}},
    }]

    report = reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store(rt).id, rt.timing)

    assert (report.checkouts, report.orders) == (2, 1)
    with rt.sessions() as session:
        carts = {c.checkout_token: c for c in session.scalars(select(t.Cart))}
        order = session.scalar(select(t.Order))
    assert set(carts) == {"tok1abc", "tok2abc"}
    assert carts["tok1abc"].status == "completed" and order.cart_id == carts["tok1abc"].id
    assert carts["tok2abc"].status == "active" and carts["tok2abc"].total == 44 and carts["tok2abc"].accepts_email
    assert carts["tok2abc"].line_items[0]["title"] == "Wool socks"
    # The reconciled cart then goes through the loop like any other.
    abandon_all(rt, now() + 2 * HOUR)
    planned = messages(rt, carts["tok2abc"].id)
    assert planned and all(m.status == "planned" for m in planned)
    assert messages(rt, carts["tok1abc"].id) == []
    # What only reconciliation brought in is reported where the merchant sees it: webhooks are being lost.
    row = store(rt)
    assert row.reconciled_at is not None and report.filled == 3
    assert row.platform_issue.startswith("3 checkouts or orders reached CartResQ only through reconciliation")

    # A second run changes nothing (the order is recorded once, nothing rolls back) and clears the warning.
    again = reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store(rt).id, rt.timing)
    assert again.outcomes.get("order already recorded") == 1 and again.filled == 0
    with rt.sessions() as session:
        assert len(session.scalars(select(t.Order)).all()) == 1
        assert len(session.scalars(select(t.Cart)).all()) == 2
    assert store(rt).platform_issue is None


def test_the_periodic_job_skips_stores_needing_reauth(rt, web, fake: FakeShopify) -> None:
    install(web)
    with rt.sessions.begin() as session:
        session.scalar(select(t.Store)).needs_reauth_at = t.utcnow()
    calls = len(fake.graphql_calls())  # install itself read the shop's domains
    assert reconcile.reconcile_due(rt.sessions, rt.shopify.admin, every=HOUR, timing=rt.timing) == {}
    assert len(fake.graphql_calls()) == calls
