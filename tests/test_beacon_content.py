"""A forged beacon is not a mail relay: a tracker cart's message shows only what the platform confirms.

Shopify (Admin API `nodes(ids:)`) and WooCommerce (`GET /wc/v3/products/<id>`) fakes over real HTTP;
the beacons go through POST /track exactly as a forger would send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel, OutboundEmail
from tests.conftest import POSTAL_ADDRESS, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, messages, now, send_due
from tests.shopify_app_helpers import SECRET, install
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP
from tests.test_track import TOKEN, beacon, send
from tests.woo_helpers import Woo, make_woo

REAL_VARIANT = "46310287540521"
INVENTED_VARIANT = "46310287540999"
LURE = "URGENT payment failed verify at https://evil.example/login"
VICTIM = "ines.falk@example.com"


def forged(token: str = TOKEN, shop: str = SHOP, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A cart beacon naming a real variant with an invented title and price, and an invented variant."""
    cart = {
        "token": token, "currency": "USD", "total": 1, "count": 2,
        "items": items if items is not None else [
            {"variant_id": REAL_VARIANT, "product_id": 1, "quantity": 1, "price": 1, "title": LURE},
            {"variant_id": INVENTED_VARIANT, "quantity": 1, "price": 100, "title": "Claim your refund at evil.example"},
        ],
    }
    return beacon(shop=shop, cart=cart)


def contact(email: str = VICTIM, token: str = TOKEN, shop: str = SHOP, sid: str = "k3JxQ9vT2mWb7YzA") -> dict[str, Any]:
    return beacon("contact", shop=shop, sid=sid, cart={"token": token}, contact={"email": email},
                  consent={"marketing": True})


@pytest.fixture
def channel() -> FakeChannel:
    return FakeChannel()


@pytest.fixture
def shop() -> Iterator[FakeShopify]:
    server = FakeShopify("test-api-key", SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, shop: FakeShopify, channel: FakeChannel) -> Iterator[Runtime]:
    settings = make_settings(database_url, tmp_path, shopify_admin_base=shop.base, shopify_api_secret=SECRET)
    runtime = build_runtime(settings, channels={"email": channel, "sms": channel, "push": channel}, seed=3)
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime, shop: FakeShopify) -> Any:
    client = create_app(runtime=rt).test_client()
    assert install(client).status_code == 200
    with rt.sessions.begin() as session:
        store = session.scalars(select(t.Store).where(t.Store.domain == SHOP)).one()
        store.settings = {**(store.settings or {}), "postal_address": POSTAL_ADDRESS, "holdout_percent": 0}
    shop.put_variant(SHOP, REAL_VARIANT, "Waxed Canvas Tote", "39.90", variant_title="Olive")
    return client


def first_email(rt: Runtime) -> list[str]:
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    return send_due(rt, at + 5 * HOUR)


def test_a_forged_beacons_title_and_price_never_reach_the_email(rt: Runtime, web: Any, shop: FakeShopify,
                                                                channel: FakeChannel) -> None:
    assert send(web, forged()).status_code == 204
    assert send(web, contact()).status_code == 204
    assert first_email(rt) == ["sent"]
    [email] = channel.sent
    assert isinstance(email, OutboundEmail) and email.to == VICTIM
    body = email.html + email.text + email.subject
    assert "Waxed Canvas Tote" in body and "Olive" in body and "$39.90" in body  # the platform's word
    assert "evil.example" not in body and "URGENT" not in body and "refund" not in body.lower()
    assert "$0.01" not in body and "$1.00" not in body  # neither the forged price nor the forged total
    assert f"https://cdn.shopify.com/s/files/1/0001/{REAL_VARIANT}.jpg" in email.html  # the platform's image
    [lookup] = [c for c in shop.graphql_calls(SHOP) if "nodes(ids:" in c["body"]["query"]]
    assert sorted(lookup["body"]["variables"]["ids"]) == [
        f"gid://shopify/ProductVariant/{v}" for v in sorted((REAL_VARIANT, INVENTED_VARIANT))]


def test_a_cart_with_no_confirmed_item_is_not_messaged(rt: Runtime, web: Any, channel: FakeChannel) -> None:
    items = [{"variant_id": INVENTED_VARIANT, "quantity": 1, "price": 100, "title": LURE}]
    assert send(web, forged(items=items)).status_code == 204
    assert send(web, contact()).status_code == 204
    assert first_email(rt) == ["cancelled: items_not_confirmed"]
    assert channel.sent == []


def test_platform_lookups_are_cached(rt: Runtime, web: Any, shop: FakeShopify, channel: FakeChannel) -> None:
    assert send(web, forged()).status_code == 204
    assert send(web, contact()).status_code == 204
    assert first_email(rt) == ["sent"]
    calls = len([c for c in shop.graphql_calls(SHOP) if "nodes(ids:" in c["body"]["query"]])
    # Another day, another shopper's tracker cart with the same variants: answered from the cache.
    other = "c1-0000aaaa1111bbbb2222cccc3333dddd"
    assert send(web, forged(token=other)).status_code == 204
    assert send(web, contact("noor.haddad@example.com", token=other, sid="Zz9Yy8Xx7Ww6Vv5U")).status_code == 204
    assert first_email(rt) == ["sent"]
    assert len([c for c in shop.graphql_calls(SHOP) if "nodes(ids:" in c["body"]["query"]]) == calls == 1
    assert len(channel.sent) == 2


def test_a_tracker_address_gets_one_carts_sequence_a_day(rt: Runtime, web: Any) -> None:
    assert send(web, forged()).status_code == 204
    assert send(web, contact()).status_code == 204
    at = now() + 2 * HOUR
    abandon_all(rt, at)
    other = "c1-0000aaaa1111bbbb2222cccc3333dddd"
    assert send(web, forged(token=other)).status_code == 204
    assert send(web, contact(token=other)).status_code == 204  # the same address on a second cart
    abandon_all(rt, at + 3 * HOUR)
    with rt.sessions() as session:
        first, second = session.scalars(select(t.Cart).order_by(t.Cart.id)).all()
    assert messages(rt, first.id) and messages(rt, second.id) == []
    assert {m.status for m in messages(rt, first.id)} == {"planned"}  # not superseded by the second one
    # A day later the address may get another cart's sequence.
    third = "c1-4444eeee5555ffff6666aaaa7777bbbb"
    assert send(web, forged(token=third)).status_code == 204
    assert send(web, contact(token=third)).status_code == 204
    abandon_all(rt, at + timedelta(days=1, hours=1))
    with rt.sessions() as session:
        newest = session.scalars(select(t.Cart).order_by(t.Cart.id.desc())).first()
    assert messages(rt, newest.id)


def test_new_tracker_addresses_are_limited_per_ip_and_per_shop(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, track_contact_ip_limit="2/hour", track_contact_shop_limit="3/hour")
    runtime = build_runtime(settings)
    try:
        from tests.conftest import add_store

        add_store(runtime)
        client = create_app(runtime=runtime).test_client()

        def capture(n: int, ip: str) -> str | None:
            token = f"c1-{n:032d}"
            send(client, forged(token=token), ip=ip)
            send(client, contact(f"shopper{n}@example.com", token=token), ip=ip)
            with runtime.sessions() as session:
                return session.scalars(select(t.Cart.email).where(t.Cart.cart_token == token)).one()

        assert [capture(n, "198.51.100.1") for n in range(3)] == ["shopper0@example.com", "shopper1@example.com", None]
        # Another address may still capture until the shop's own limit (3/hour) is used up.
        assert [capture(n, "198.51.100.2") for n in range(3, 5)] == ["shopper3@example.com", None]
        with runtime.sessions() as session:
            details = session.scalars(select(t.TrackEvent.detail).where(t.TrackEvent.type == "contact")).all()
        assert details.count("contact dropped: limit") == 2
    finally:
        runtime.close()


@pytest.fixture
def woo(database_url: str, tmp_path: Path) -> Iterator[Woo]:
    yield from make_woo(database_url, tmp_path)


def test_woocommerce_tracker_carts_show_the_stores_products_only(woo: Woo) -> None:
    store = woo.store_row()
    with woo.rt.sessions.begin() as session:
        row = session.get(t.Store, store.id)
        row.settings = {**(row.settings or {}), "postal_address": POSTAL_ADDRESS, "allowed_origins": [woo.store.url]}
    woo.store.put_product(812, "Linen Apron", "24.00")
    items = [
        {"product_id": 812, "quantity": 2, "price": 1, "title": LURE},
        {"product_id": 999, "quantity": 1, "price": 5, "title": "Claim your refund at evil.example"},
    ]
    body = forged(shop=store.domain, items=items)
    assert send(woo.client, body, origin=woo.store.url).status_code == 204
    assert send(woo.client, contact(shop=store.domain), origin=woo.store.url).status_code == 204
    assert first_email(woo.rt) == ["sent"]
    [email] = woo.fake.sent
    text = email.html + email.text
    assert "Linen Apron" in text and "evil.example" not in text and "URGENT" not in text
    assert "48.00" in text  # 2 x 24.00, the store's price; not the beacon's total
    assert ("GET", "/wp-json/wc/v3/products/812") in woo.store.requests


def test_a_platform_cart_whose_lines_a_newer_beacon_changed_is_confirmed_too(
    rt: Runtime, web: Any, shop: FakeShopify, channel: FakeChannel
) -> None:
    """A checkout webhook describes the cart; a later beacon changes its lines: those are the tracker's word
    now (`verify.from_tracker`), looked up before they reach the email."""
    from tests.support import shopify as webhooks

    checkout = webhooks.load("checkouts_update")
    assert webhooks.post(web, "checkouts_update", payload=checkout, secret=SECRET).status_code == 200
    drain(rt)
    assert send(web, forged(token=checkout["cart_token"])).status_code == 204
    assert first_email(rt) == ["sent"]
    [email] = channel.sent
    body = email.html + email.text + email.subject  # type: ignore[union-attr]
    assert "Waxed Canvas Tote" in body and "evil.example" not in body and "URGENT" not in body
    assert [c for c in shop.graphql_calls(SHOP) if "nodes(ids:" in c["body"]["query"]]
