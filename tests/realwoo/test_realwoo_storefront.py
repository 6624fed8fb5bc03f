"""The plugin's storefront scripts in Chromium on the real store, once per order storage: checkout capture,
the exit popup, the push worker, the SMS opt-in. No request answered 4xx by the store or the app, no script
error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.realwoo.checks import OPT_IN, store_api_cart, watch
from tests.realwoo.store import RealWoo, wait_for

Connected = tuple[RealWoo, str]


@pytest.mark.parametrize("checkout", ["block", "classic"])
def test_a_shopper_leaving_the_checkout_with_an_email_is_one_cart(
    connected: Connected, browser: Any, checkout: str
) -> None:
    """A stock store (no consent plugin) based in Germany: the checkout's opt-in box is the consent."""
    rw, _ = connected
    url = f"{rw.store_url}/checkout/" if checkout == "block" else rw.classic_checkout()
    email = f"leaver.{checkout}.{rw.storage}@example.com"
    context = browser.new_context()
    try:
        page = context.new_page()
        failed = watch(page)
        page.goto(f"{rw.store_url}/?add-to-cart=11")
        page.goto(url)
        field = "#email" if checkout == "block" else "#billing_email"
        page.wait_for_selector(field, timeout=30000)
        key = store_api_cart(page)["extensions"]["cartresq"]["cart_key"]
        page.fill(field, email)
        page.locator(field).blur()
        page.locator(OPT_IN).first.check()

        def cart() -> Any:
            rows = rw.rows("SELECT id, email, checkout_token FROM carts WHERE cart_token = :k", k=key)
            return rows[0] if rows and rows[0].email == email else None

        if checkout == "block":  # the draft order carries the email too; it joins the tracker's cart
            wait_for("the draft order", lambda: any(o["status"] == "checkout-draft" and o["email"] == email
                                                    for o in rw.wpq("orders")))
            rw.run_queue()
        row = wait_for("the cart with the email", cart, timeout=30)
    finally:
        context.close()
    rows = rw.rows("SELECT id, checkout_token FROM carts WHERE cart_token = :k OR email = :e", k=key, e=email)
    assert [r.id for r in rows] == [row.id]  # beacons, draft and contact: one cart
    if checkout == "block":
        wait_for("the draft to join", lambda: rw.rows("SELECT checkout_token FROM carts WHERE id = :i",
                                                      i=row.id)[0][0])
    # One script owns the checkout's contact on WooCommerce (the plugin's): no duplicate contact beacon.
    events = rw.rows("SELECT type, detail FROM track_events WHERE cart_id = :i AND detail LIKE :c", i=row.id,
                     c="contact%")
    assert {e.type for e in events} == {"checkout_contact"}, events
    assert [e.detail for e in events].count("contact captured") == 1 and "contact already known" not in [
        e.detail for e in events], events
    assert failed == [], failed  # no request the storefront or the app refused, no script error


def test_the_plugin_serves_the_push_service_worker_at_the_site_root(connected: Connected, browser: Any) -> None:
    rw, _ = connected
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{rw.store_url}/")
        scope = page.evaluate("navigator.serviceWorker.register('/cartresq-sw.js', {scope: '/'})"
                              ".then(() => navigator.serviceWorker.ready).then(r => r.scope + ' ' + r.active.scriptURL)")
    finally:
        context.close()
    assert scope == f"{rw.store_url}/ {rw.store_url}/cartresq-sw.js"  # it imports CartResQ's worker


def test_the_exit_popup_applies_a_woocommerce_coupon_and_offers_browser_reminders(
    connected: Connected, browser: Any
) -> None:
    """The popup on WooCommerce uses the plugin's URLs: the offer link applies the code (a coupon made on the
    store) on the way to WooCommerce's checkout; the push button registers the worker the plugin serves at the
    site root and subscribes at the app, linked to this cart (the push service is faked: headless Chromium has
    none)."""
    from tests.browser.test_push_browser import FAKE_SUBSCRIBE, SUBSCRIPTION

    rw, _ = connected
    rw.store("set", "exit_offer=Take 10% off if you order today", "exit_offer_percent=10")
    context = browser.new_context(permissions=["notifications"])
    try:
        page = context.new_page()
        problems = watch(page)
        page.add_init_script(FAKE_SUBSCRIBE)
        page.goto(f"{rw.store_url}/?add-to-cart=11")
        page.goto(f"{rw.store_url}/cart/")
        opened = page.evaluate("performance.now()")
        key = store_api_cart(page)["extensions"]["cartresq"]["cart_key"]
        [cart_id] = wait_for("the tracker's cart", lambda: [r.id for r in rw.rows(
            "SELECT id FROM carts WHERE cart_token = :k AND total > 0", k=key)])
        waited = page.evaluate("performance.now()") - opened
        page.wait_for_timeout(max(0.0, 5300 - waited))  # the tracker shows no popup in a page's first 5 s
        page.mouse.move(640, 300)
        page.mouse.move(640, 5, steps=4)
        page.mouse.move(640, -20)  # the pointer leaves through the top: exit intent
        page.locator("#cartresq-popup [role=dialog]").wait_for(state="visible", timeout=20000)
        code = page.locator("#cartresq-popup .cq-c").inner_text()
        offer = page.get_by_role("link", name="Apply code and check out")
        assert offer.get_attribute("href") == f"{rw.store_url}/checkout/?cartresq_coupon={code}"
        coupon = rw.wpq("coupon", code)
        assert (coupon["type"], float(coupon["amount"]), coupon["usage_limit"]) == ("percent", 10.0, 1)

        page.get_by_role("button", name="Remind me in this browser").click()
        page.locator("#cartresq-popup [role=status]").filter(has_text="remind you").wait_for(timeout=20000)
        registration = page.evaluate("""navigator.serviceWorker.getRegistration('/')
            .then(r => r && r.scope + ' ' + (r.active || r.waiting || r.installing).scriptURL)""")
        assert registration == f"{rw.store_url}/ {rw.store_url}/cartresq-sw.js"
        subscriptions = rw.rows("SELECT cart_id FROM push_subscriptions WHERE endpoint = :e",
                                e=SUBSCRIPTION["endpoint"])
        assert [s.cart_id for s in subscriptions] == [cart_id]

        offer.click()
        page.wait_for_url(f"{rw.store_url}/checkout/", timeout=30000)
        cart = store_api_cart(page)
        assert [c["code"] for c in cart["coupons"]] == [code], cart.get("errors")
        assert int(cart["totals"]["total_discount"]) > 0
    finally:
        context.close()
        rw.store("unset", "exit_offer", "exit_offer_percent")
    assert problems == [], problems


def test_the_sms_box_at_checkout_is_unticked_and_a_ticked_one_is_sms_consent(
    connected: Connected, browser: Any
) -> None:
    """The merchant turns the SMS opt-in on; a shopper on the classic checkout ticks it and orders."""
    rw, _ = connected
    rw.wpq("plugin-set", "sms_opt_in=yes")
    email = f"texts.{rw.storage}@example.com"
    context = browser.new_context()
    try:
        page = context.new_page()
        problems = watch(page)
        page.goto(f"{rw.store_url}/?add-to-cart=11")
        page.goto(rw.classic_checkout())
        box = page.locator("#cartresq_sms_opt_in")
        box.wait_for(timeout=30000)
        assert not box.is_checked()  # off by default: consent is given, not assumed
        for field, value in (("#billing_first_name", "Test"), ("#billing_last_name", "Shopper"),
                             ("#billing_address_1", "Teststrasse 2"), ("#billing_postcode", "10115"),
                             ("#billing_city", "Berlin"), ("#billing_phone", "+49 30 1234567"),
                             ("#billing_email", email)):
            page.fill(field, value)
        box.check()
        page.locator("#place_order").click()
        page.wait_for_url("**/order-received/**", timeout=60000)
    finally:
        context.close()
        rw.wpq("plugin-set", "sms_opt_in=")
    [order] = [o for o in rw.wpq("orders") if o["email"] == email]
    rw.run_queue()
    # A purchase: the shopper's consent is recorded on the customer (source: the checkout)
    [row] = wait_for("the order", lambda: rw.rows(
        "SELECT c.sms_consent, c.sms_consent_source, c.email_consent, o.phone FROM orders o "
        "JOIN customers c ON c.id = o.customer_id WHERE o.platform_order_id = :i", i=str(order["id"])))
    assert (row.sms_consent, row.sms_consent_source, row.email_consent) == (True, "checkout", False)
    assert row.phone == "+49301234567"  # typed "+49 30 1234567": E.164
    assert problems == [], problems
