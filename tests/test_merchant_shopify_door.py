"""The embedded door: Shopify's head tags and wrappers on the same templates, every request scoped to the
session token's shop, forms posted with the bearer token (App Bridge's fetch) and no CSRF cookie."""

from __future__ import annotations

import re

import pytest

from app.runtime import Runtime
from recovery.config.store_settings import effective
from tests.merchant_helpers import store_settings
from tests.shopify_app_helpers import API_KEY, SECRET, fake, install, rt, store, web  # noqa: F401
from tests.support.fake_shopify import session_token

SHOP_A, SHOP_B = "amber-loom.myshopify.com", "birch-kiln.myshopify.com"
PAGES = ["/app/", "/app/setup", "/app/flow", "/app/templates", "/app/status"]


def _bearer(shop: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(shop, API_KEY, SECRET)}"}


@pytest.mark.parametrize("path", PAGES)
def test_embedded_pages_carry_app_bridge_polaris_and_plain_html(rt: Runtime, web, path: str) -> None:  # noqa: F811
    install(web, SHOP_A)
    page = web.get(path, headers=_bearer(SHOP_A))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<meta name="shopify-api-key" content="{API_KEY}">' in html
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in html
    assert '<script src="https://cdn.shopify.com/shopifycloud/polaris.js"></script>' in html
    assert re.search(r"<ui-nav-menu>\s*<a href=\"/app/\" rel=\"home\">Overview</a>", html)
    assert "<ui-title-bar title=" in html and "<s-page heading=" in html
    assert '<h1 class="cq-heading">' in html  # plain HTML inside: usable with the components undefined
    assert "<header>" not in html  # the admin's own navigation replaces ours
    csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors https://{SHOP_A} https://admin.shopify.com" in csp


def test_the_standalone_door_has_no_shopify_tags(rt: Runtime, web) -> None:  # noqa: F811
    install(web, SHOP_A)
    from tests.merchant_helpers import make_account, sign_in

    make_account(rt, "owner@example.com", store(rt, SHOP_A).id)
    sign_in(web, "owner@example.com")
    html = web.get("/app/flow").get_data(as_text=True)
    assert "shopify-api-key" not in html and "app-bridge.js" not in html and "<ui-nav-menu>" not in html
    assert "data-save-bar" in html and "<s-section" in html  # same template, same forms


def test_a_session_token_reaches_its_own_shop_only_on_every_page(rt: Runtime, web) -> None:  # noqa: F811
    install(web, SHOP_A)
    install(web, SHOP_B)
    for path in PAGES:
        assert web.get(f"{path}?store={SHOP_B}", headers=_bearer(SHOP_A)).status_code == 404, path
        assert SHOP_B not in web.get(path, headers=_bearer(SHOP_A)).get_data(as_text=True)


def test_embedded_forms_post_with_the_session_token_and_change_that_shop_only(rt: Runtime, web) -> None:  # noqa: F811
    install(web, SHOP_A)
    install(web, SHOP_B)
    answer = web.post("/app/setup/sender", headers=_bearer(SHOP_A),
                      data={"sender_name": "Amber Loom", "reply_to": "help@example.com"})
    assert answer.status_code == 303
    assert effective(store_settings(rt, store(rt, SHOP_A).id))["sender_name"] == "Amber Loom"
    assert effective(store_settings(rt, store(rt, SHOP_B).id))["sender_name"] == ""
    assert web.post(f"/app/setup/sender?store={SHOP_B}", headers=_bearer(SHOP_A),
                    data={"sender_name": "Not mine"}).status_code == 404
    forged = web.post("/app/setup/sender", headers={"Authorization": "Bearer forged"}, data={"sender_name": "x"})
    assert forged.status_code in (401, 403)


def test_shopify_admins_first_load_at_the_root_goes_to_the_app(rt: Runtime, web) -> None:  # noqa: F811
    query = f"shop={SHOP_A}&embedded=1&id_token={session_token(SHOP_A, API_KEY, SECRET)}"
    first = web.get(f"/?{query}")
    assert first.status_code == 302 and first.headers["Location"] == f"/app/?{query}"
    assert web.get(first.headers["Location"]).status_code == 200
    browser = web.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert browser.status_code == 302 and browser.headers["Location"] == "/app/"


def test_store_status_checks_the_shopify_store_now(rt: Runtime, web) -> None:  # noqa: F811
    install(web, SHOP_A)
    page = web.get("/app/status", headers=_bearer(SHOP_A)).get_data(as_text=True)
    assert 'id="token-state">working<' in page and "Check and repair webhooks now" in page
    before = store(rt, SHOP_A).reconciled_at
    answer = web.post("/app/status/reconcile", headers=_bearer(SHOP_A))
    assert answer.status_code == 303 and "checked=ok" in answer.headers["Location"]
    assert store(rt, SHOP_A).reconciled_at is not None and store(rt, SHOP_A).reconciled_at != before
