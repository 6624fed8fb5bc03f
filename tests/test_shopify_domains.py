"""The shop's storefront domains (Admin API) become tracker origins on install and reconciliation."""

from __future__ import annotations

from typing import Any

from app.runtime import Runtime
from connectors.shopify import reconcile
from recovery.storage import tables as t
from recovery.config.store_settings import effective
from recovery.config.stores import get_store, set_settings
from tests.shopify_app_helpers import fake, install, rt, store, web  # noqa: F401
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP
from tests.test_track import beacon, send

WWW, BARE = "www.velvetfern.example.com", "velvetfern.example.com"


def origins(rt: Runtime) -> list[str]:
    return effective(store(rt).settings or {})["allowed_origins"]  # type: ignore[no-any-return]


def domain_queries(fake: FakeShopify) -> list[dict[str, Any]]:
    return [c["body"] for c in fake.graphql_calls() if "primaryDomain" in c["body"]["query"]]


def test_install_allows_the_custom_domains_origins(rt, web, fake: FakeShopify) -> None:
    fake.shop(SHOP).custom_domains = [WWW, BARE]
    assert install(web).status_code == 200
    [query] = domain_queries(fake)
    assert "shop { primaryDomain { host url } domains { host url } }" in query["query"]
    assert origins(rt) == [f"https://{BARE}", f"https://{WWW}"]
    response = send(web, beacon(), origin=f"https://{WWW}")
    assert response.status_code == 204 and response.headers["Access-Control-Allow-Origin"] == f"https://{WWW}"
    assert send(web, beacon(), origin=f"https://{SHOP}").status_code == 204
    assert send(web, beacon(), origin="https://shop.evil.example.com").status_code == 403


def test_reconciliation_follows_new_domains_but_keeps_a_merchants_explicit_value(rt, web, fake: FakeShopify) -> None:
    install(web)
    assert origins(rt) == []  # no custom domain yet: the myshopify origin is always allowed anyway
    fake.shop(SHOP).custom_domains = [WWW]
    reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store(rt).id, rt.timing)
    assert origins(rt) == [f"https://{WWW}"]
    # `cartresq store set` (set_settings) is the merchant's choice: later runs leave it alone.
    with rt.sessions.begin() as session:
        set_settings(session, get_store(session, SHOP), ["allowed_origins=https://shop.velvetfern.example.com"])
    fake.shop(SHOP).custom_domains = [WWW, BARE]
    reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store(rt).id, rt.timing)
    assert origins(rt) == ["https://shop.velvetfern.example.com"]
    assert send(web, beacon(), origin=f"https://{BARE}").status_code == 403


def test_without_shop_domains_in_the_api_the_primary_domain_is_used(rt, web, fake: FakeShopify) -> None:
    fake.shop_domains_removed = True
    fake.shop(SHOP).custom_domains = [WWW, BARE]
    install(web)
    assert origins(rt) == [f"https://{WWW}"]
    assert [("domains {" in q["query"]) for q in domain_queries(fake)] == [True, False]


def test_a_platform_failure_never_blocks_the_install_and_reconciliation_catches_up(rt, web, fake: FakeShopify) -> None:
    fake.shop(SHOP).custom_domains = [WWW]
    fake.script.extend([("503", None), ("503", None)])  # both tries of the install-time call
    assert install(web).status_code == 200
    assert store(rt).credentials is not None and origins(rt) == []
    reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store(rt).id, rt.timing)
    assert origins(rt) == [f"https://{WWW}"]


def test_install_fills_the_postal_address_from_the_shop_but_never_overwrites_the_merchants(rt, web, fake: FakeShopify) -> None:
    install(web)
    assert effective(store(rt).settings or {})["postal_address"] == "Maple Test Goods, 12 Example Road, Sampletown ON K1A 0B1, Canada"
    assert store(rt).name == "Maple Test Goods"
    with rt.sessions.begin() as session:
        set_settings(session, get_store(session, SHOP), ["postal_address=PO Box 7, Exampleville"])
    fake.shop(SHOP).address_lines = ["Elsewhere 1"]
    reconcile.reconcile_store(rt.sessions, rt.shopify.admin, store(rt).id, rt.timing)
    assert effective(store(rt).settings or {})["postal_address"] == "PO Box 7, Exampleville"


def test_the_embedded_dashboard_shows_one_shop_and_warns_when_its_address_is_missing(rt, web, fake: FakeShopify) -> None:
    from tests.shopify_app_helpers import API_KEY, SECRET
    from tests.support.fake_shopify import session_token

    install(web)
    other = "alder-test.myshopify.com"
    with rt.sessions.begin() as session:
        session.add(t.Store(platform="shopify", domain=other, settings={}, timezone="UTC", currency="USD", plan="free"))
    headers = {"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"}
    page = web.get("/", headers=headers).get_data(as_text=True)
    assert "has no postal address" not in page  # ours came from Shopify; the other shop is not ours to see
    with rt.sessions.begin() as session:
        set_settings(session, get_store(session, SHOP), ["postal_address="])
    page = web.get("/", headers=headers).get_data(as_text=True)
    assert f"{SHOP} has no postal address" in page and other not in page


def test_install_points_the_app_embed_at_our_track_endpoint_once(rt, web, fake: FakeShopify) -> None:
    install(web)
    assert fake.shop(SHOP).app_metafields[("cartresq", "track_url")] == f"{rt.settings.app_url}/track"
    sets = [c for c in fake.graphql_calls() if "metafieldsSet" in c["body"]["query"]]
    [call] = sets
    [field] = call["body"]["variables"]["metafields"]
    assert field["ownerId"].startswith("gid://shopify/AppInstallation/") and field["type"] == "single_line_text_field"
    rt.shopify.sync_origins(store(rt).id)  # unchanged: read, not written again
    assert len([c for c in fake.graphql_calls() if "metafieldsSet" in c["body"]["query"]]) == 1


def test_install_activates_the_web_pixel_and_a_new_app_url_updates_it(rt, web, fake: FakeShopify) -> None:
    import dataclasses
    import json

    install(web)
    pixel = fake.shop(SHOP).web_pixel
    assert pixel is not None and json.loads(pixel["settings"]) == {"endpoint": f"{rt.settings.app_url}/track"}
    # The app moved: the next sync finds the pixel taken and updates its settings in place
    rt.shopify.config = dataclasses.replace(rt.shopify.config, app_url="https://app2.example.com")
    rt.shopify.sync_origins(store(rt).id)
    assert json.loads(fake.shop(SHOP).web_pixel["settings"]) == {"endpoint": "https://app2.example.com/track"}
    assert fake.shop(SHOP).web_pixel["id"] == pixel["id"]
