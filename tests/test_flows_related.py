"""Recommendations while a store has too few orders for co-purchase: Shopify's own related products (the
storefront's /recommendations/products.json, faked over HTTP with its exact shape), cached per product, only
to the shop's own domains, failure → best sellers; WooCommerce: same-category best sellers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.flows import related
from recovery.flows.products import recommend
from recovery.sending.channels import FakeChannel
from recovery.storage import tables as t
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, daytime, send_at, set_store
from tests.support import shopify
from tests.support.fake_shopify import FakeShopify, storefront_product
from tests.support.fake_woocommerce import load
from tests.test_flows import PRODUCTS, _order, checkout, fan_out, flow_emails, flow_messages, post
from tests.woo_helpers import Woo, make_woo

MINUTE = timedelta(minutes=1)
TOTE, MUG, SCARF, BELT = (str(PRODUCTS[p][0]) for p in ("TOTE", "MUG", "SCARF", "BELT"))
GHOST = 8840213799999  # a product Shopify recommends that our catalog never recorded


@pytest.fixture
def shop() -> Iterator[FakeShopify]:
    server = FakeShopify("test-api-key", "unused").start()
    yield server
    server.stop()


@pytest.fixture
def fake() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeChannel, redis_url: str, shop: FakeShopify) -> Iterator[Runtime]:
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, shopify_admin_base=shop.base,
                             allow_private_hosts=True)
    runtime = build_runtime(settings, channels={"email": fake, "sms": fake, "push": fake})
    add_store(runtime)
    with runtime.sessions.begin() as session:  # installed: the app holds the shop's (sealed) credentials
        session.scalars(select(t.Store)).one().credentials = runtime.shopify.vault.seal({"access_token": "x"})
    set_store(runtime, holdout_percent=0, cross_sell="on")
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def calls(shop: FakeShopify) -> list[dict]:  # type: ignore[type-arg]
    return [r for r in shop.requests if r["path"] == "/recommendations/products.json"]


def cross_sell(rt: Runtime, client, fake: FakeChannel) -> tuple[str, datetime]:  # type: ignore[no-untyped-def]
    """Few past orders (the belt 3 times, the scarf once), then Maren's order of the tote and the mug, fulfilled:
    her cross-sell is due 7 days later. Returns its email text and the due time."""
    for n, lines in enumerate([["BELT"]] * 3 + [["SCARF"]]):
        post(rt, client, "orders/create", _order(9000 + n, lines, email=f"past{n}@example.com"))
    checkout(rt, client)
    placed = daytime()
    order = _order(1, ["TOTE", "MUG"], email="maren.holloway@example.com", at=placed)
    order.update(checkout_token=shopify.load("orders_create")["checkout_token"], buyer_accepts_marketing=True)
    post(rt, client, "orders/create", order)
    post(rt, client, "orders/fulfilled", {**order, "fulfillment_status": "fulfilled",
                                          "fulfillments": [{"created_at": placed.isoformat()}]})
    assert fan_out(rt, placed + MINUTE) == {"planned": 1}
    [message] = flow_messages(rt, "cross_sell")
    send_at(rt, message.due_at + MINUTE)
    [email] = flow_emails(fake)
    return email.text, message.due_at


def test_shopify_related_products_recorded_and_in_stock_come_first(rt: Runtime, client, shop: FakeShopify, fake: FakeChannel) -> None:
    shop.shop(shopify.SHOP).recommendations = {TOTE: [
        storefront_product(GHOST, "Ghost Lamp", "80.00"),  # not in our catalog: never shown
        storefront_product(int(SCARF), "Silk Scarf", "35.00"),
        storefront_product(int(BELT), "Leather Belt", "45.00", available=False),  # Shopify says sold out
    ]}  # the mug: 404 "Product not found"
    text, due = cross_sell(rt, client, fake)
    asked = calls(shop)
    assert sorted(c["headers"]["Host"] for c in asked) == [shopify.SHOP] * 2
    assert {c["path"] for c in asked} == {"/recommendations/products.json"}
    assert "You may also like these" in text and "Silk Scarf" in text and "Ghost Lamp" not in text
    # The scarf (Shopify's pick) before the belt (a best seller filling the list)
    assert text.index("Silk Scarf") < text.index("Leather Belt")
    with rt.sessions() as session:
        rows = {r.product_id: r for r in session.scalars(select(t.PlatformRecommendation))}
    assert rows[TOTE].ok and rows[TOTE].related == [str(GHOST), SCARF] and rows[MUG].ok and rows[MUG].related == []
    # Cached for 24 h: the next send for the same products asks nothing; a day later it asks again
    with rt.sessions() as session:
        store = session.scalars(select(t.Store)).one()
        session.expunge(store)
    source = rt.sender.composer.related
    with rt.sessions.begin() as session:
        ids = [m.id for m in session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.flow == "cross_sell"))]
        session.execute(t.RecoveryMessage.__table__.update().values(status="queued"))
    assert related.prepare(rt.sessions, source, ids, due + HOUR) == 0 and len(calls(shop)) == 2
    assert related.prepare(rt.sessions, source, ids, due + 25 * HOUR) == 2 and len(calls(shop)) == 4


def test_a_failing_storefront_falls_back_to_best_sellers(rt: Runtime, client, shop: FakeShopify, fake: FakeChannel) -> None:
    shop.shop(shopify.SHOP).recommendations_status = 503
    text, _ = cross_sell(rt, client, fake)
    assert len(calls(shop)) == 2
    assert "popular with its shoppers" in text and "Leather Belt" in text and "Silk Scarf" in text
    with rt.sessions() as session:
        assert {r.ok for r in session.scalars(select(t.PlatformRecommendation))} == {False}


def test_a_redirect_off_the_shops_domains_is_not_followed(rt: Runtime, client, shop: FakeShopify, fake: FakeChannel) -> None:
    shop.shop(shopify.SHOP).recommendations_redirect = "https://elsewhere.example.com/recommendations/products.json?product_id=1"
    shop.shop("elsewhere.example.com").recommendations = {TOTE: [storefront_product(GHOST, "Ghost Lamp", "80.00")]}
    text, _ = cross_sell(rt, client, fake)
    assert [c["headers"]["Host"] for c in calls(shop)] == [shopify.SHOP] * 2  # asked, never followed
    assert "popular with its shoppers" in text


def test_a_redirect_to_the_shops_own_storefront_domain_is_followed(rt: Runtime, client, shop: FakeShopify, fake: FakeChannel) -> None:
    own = "shop.velvetfern.example.com"
    set_store(rt, allowed_origins=[f"https://{own}"])
    query = f"product_id={TOTE}&limit=4&intent=related"
    shop.shop(shopify.SHOP).recommendations_redirect = f"https://{own}/recommendations/products.json?{query}"
    shop.shop(own).recommendations = {TOTE: [storefront_product(int(SCARF), "Silk Scarf", "35.00")]}
    text, _ = cross_sell(rt, client, fake)
    assert own in [c["headers"]["Host"] for c in calls(shop)]
    assert "You may also like these" in text and "Silk Scarf" in text


def test_a_store_not_installed_is_never_asked(rt: Runtime, client, shop: FakeShopify, fake: FakeChannel) -> None:
    with rt.sessions.begin() as session:
        session.scalars(select(t.Store)).one().credentials = None
    shop.shop(shopify.SHOP).recommendations = {TOTE: [storefront_product(int(SCARF), "Silk Scarf", "35.00")]}
    text, _ = cross_sell(rt, client, fake)
    assert calls(shop) == [] and "popular with its shoppers" in text


@pytest.fixture
def woo(database_url: str, tmp_path: Path, redis_url: str) -> Iterator[Woo]:
    yield from make_woo(database_url, tmp_path, redis_url=redis_url)


def test_cached_related_products_are_purged_once_too_old_to_use(rt: Runtime) -> None:
    from datetime import UTC

    from recovery.consent.purge import RECOMMENDATIONS_KEPT, purge_unauthenticated

    assert RECOMMENDATIONS_KEPT > related.USABLE
    now = datetime.now(UTC)
    with rt.sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        for product, age in (("101", timedelta(days=9)), ("102", timedelta(days=1))):
            session.add(t.PlatformRecommendation(store_id=store_id, product_id=product, related=["7"], ok=True,
                                                 fetched_at=now - age))
    with rt.sessions.begin() as session:
        assert purge_unauthenticated(session, now)["platform_recommendations"] == 1
        assert list(session.scalars(select(t.PlatformRecommendation.product_id))) == ["102"]


def test_woocommerce_recommends_same_category_best_sellers(woo: Woo) -> None:
    def product(pid: int, name: str, category: int) -> None:
        payload = {**load("product_updated"), "id": pid, "name": name, "slug": name.lower().replace(" ", "-"),
                   "price": "10.00", "parent_id": 0, "categories": [{"id": category, "name": "C", "slug": "c"}],
                   "date_modified_gmt": "2026-11-30T10:00:00"}
        assert woo.post("product.updated", payload).status_code == 200

    for pid, name, category in ((301, "Chef Knife", 19), (302, "Cutting Board", 19), (303, "Garden Hose", 20),
                                (304, "Whetstone", 19)):
        product(pid, name, category)
    drain(woo.rt)
    with woo.rt.sessions() as session:
        store = session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()
        assert session.scalar(select(t.ProductStat.categories).where(t.ProductStat.product_id == "301")) == ["19"]
        found, source = recommend(session, store, {"301"}, {"301"}, 4)
    assert source == "category" and [r.product_id for r in found] == ["302", "304"]
