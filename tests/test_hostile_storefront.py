"""Issue 18, storefront side: what a stranger can no longer do through /track, exit offers and /r/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from app import create_app
from app.runtime import build_runtime
from recovery.storage import tables as t
from tests.conftest import add_store, make_settings
from tests.loop_helpers import HOUR, abandon_all, messages, now, send_due
from tests.shopify_app_helpers import fake, rt, web  # noqa: F401  (fixtures)
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP
from tests.test_exit_offer import creates, offer_store
from tests.test_links import sent, token  # noqa: F401  (fixture)
from tests.test_track import beacon, send
from tests.test_woocommerce_offers import OFFER_FIRST, _configure, _us_order
from tests.woo_helpers import Woo, woo  # noqa: F401  (fixture)


# --- finding 6: the per-shop limit counts only beacons that passed the origin and store checks ---------


def test_refused_beacons_do_not_use_up_the_shops_quota(database_url: str, tmp_path: Path) -> None:
    rt = build_runtime(make_settings(database_url, tmp_path, track_ip_limit="100/minute", track_shop_limit="2/minute"))
    try:
        add_store(rt)
        client = create_app(runtime=rt).test_client()
        forged = [send(client, beacon(), origin="https://evil.example", ip=f"198.51.100.{i}").status_code for i in range(5)]
        assert forged == [403] * 5
        assert send(client, beacon(), origin=None, ip="198.51.100.9").status_code == 403
        # The shop's real shoppers still have the whole quota.
        assert [send(client, beacon(), ip=f"203.0.113.{i}").status_code for i in range(3)] == [204, 204, 429]
    finally:
        rt.close()


# --- finding 5: exit codes only for carts with items and value, capped per IP and per shop a day ---------


def exit_from(client: Any, n: int, ip: str) -> dict[str, Any]:
    """A new session with its own cart (items and value), then its exit intent."""
    cart_token, sid = f"c1-{n:032d}", f"Session{n:012d}"
    cart = beacon(sid=sid)
    cart["cart"]["token"] = cart_token
    assert send(client, cart, ip=ip).status_code == 204
    return send(client, beacon("exit", sid=sid, cart={"token": cart_token}), ip=ip).json["popup"]  # type: ignore[no-any-return]


def test_exit_codes_are_capped_per_ip(rt, web, fake: FakeShopify) -> None:  # noqa: F811
    offer_store(rt, web)
    kinds = [exit_from(web, n, "198.51.100.1")["kind"] for n in range(5)]
    assert kinds == ["offer", "offer", "offer", "capture", "capture"]  # 3/day per address by default
    assert len(creates(fake)) == 3
    assert exit_from(web, 9, "198.51.100.2")["kind"] == "offer"  # another address is not affected


def test_exit_codes_are_capped_per_shop_and_day(database_url: str, tmp_path: Path, fake: FakeShopify) -> None:  # noqa: F811
    from tests.shopify_app_helpers import SECRET

    runtime = build_runtime(make_settings(database_url, tmp_path, shopify_admin_base=fake.base, shopify_api_secret=SECRET,
                                          exit_code_shop_daily=2))
    try:
        client = create_app(runtime=runtime).test_client()
        offer_store(runtime, client)
        kinds = [exit_from(client, n, f"198.51.100.{n}")["kind"] for n in range(4)]
        assert kinds == ["offer", "offer", "capture", "capture"] and len(creates(fake)) == 2
    finally:
        runtime.close()


def test_an_exit_without_items_or_value_makes_no_code(rt, web, fake: FakeShopify) -> None:  # noqa: F811
    offer_store(rt, web)
    empty = beacon(sid="EmptyCartSession1")
    empty["cart"].update(token="c1-emptyemptyempty", items=[], total=0)
    assert send(web, empty).status_code == 204
    answer = send(web, beacon("exit", sid="EmptyCartSession1", cart={"token": "c1-emptyemptyempty"})).json
    assert answer == {"popup": {"kind": "capture"}} and creates(fake) == []
    # Items, but nothing to pay: no code either.
    free = beacon(sid="FreeCartSession01")
    free["cart"].update(token="c1-freefreefree", total=0, items=[{"variant_id": 1, "quantity": 1, "price": 0, "title": "Sample"}])
    assert send(web, free).status_code == 204
    assert send(web, beacon("exit", sid="FreeCartSession01", cart={"token": "c1-freefreefree"})).json == {
        "popup": {"kind": "capture"}}
    assert creates(fake) == []


def test_an_offer_steps_code_is_made_only_for_a_message_that_will_be_sent(woo: Woo) -> None:  # noqa: F811
    _configure(woo, f"sequence={OFFER_FIRST}", "offer_percent=15")
    woo.deliver("order_created__classic_pending", **_us_order())  # type: ignore[arg-type]
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(woo.rt, at)
    with woo.rt.sessions.begin() as session:  # the shopper unsubscribed meanwhile
        cart = session.get(t.Cart, cart_id)
        session.add(t.Suppression(store_id=cart.store_id, channel="email", address=cart.email, reason="unsubscribed"))
    assert send_due(woo.rt, at + 5 * HOUR) == ["cancelled: address suppressed"]
    assert woo.store.coupons == {} and woo.fake.sent == []
    with woo.rt.sessions() as session:
        assert session.scalars(select(t.DiscountCode)).all() == []
    assert [m.status for m in messages(woo.rt, cart_id)] == ["cancelled"]


# --- /r/: only to the shop's own domains --------------------------------------------------------------


def test_restore_redirects_only_to_the_shops_own_domains(sent) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    rt, client, message = sent

    def restore_to(url: str | None) -> str:
        with rt.sessions.begin() as session:
            session.get(t.Cart, message.cart_id).restore_url = url
        response = client.get(f"/r/{token(rt, 'restore', message)}")
        assert response.status_code == 302
        return str(response.headers["Location"])

    home = f"https://{SHOP}/"
    assert restore_to("https://evil.example/login") == home
    assert restore_to(f"https://{SHOP}.evil.example/cart") == home
    assert restore_to(f"https://user@{SHOP}/x") == home
    assert restore_to("javascript:alert(1)") == home
    # no URL: the cart is rebuilt from its items on the shop's own domain (connectors/restore_links.py)
    assert restore_to(None).startswith(f"https://{SHOP}/cart/")
    assert restore_to(f"https://{SHOP}/cart/c/abc?key=1") == f"https://{SHOP}/cart/c/abc?key=1"
    with rt.sessions.begin() as session:  # a custom storefront domain the shop allows
        store = session.scalars(select(t.Store)).one()
        store.settings = {**store.settings, "allowed_origins": ["https://shop.example.com"]}
    assert restore_to("https://shop.example.com/cart") == "https://shop.example.com/cart"
