"""CartResQ against a real WordPress + WooCommerce store over HTTPS, once per order storage (HPOS, posts).

The order of the tests is the order of a store's life: the merchant connects, then deliveries arrive.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from connectors.woocommerce.api import WooClient
from connectors.woocommerce.coupons import coupon_body
from recovery.storage.tables import utcnow
from tests.realwoo.store import RealWoo, wait_for

Connected = tuple[RealWoo, str]


def _deliveries_for(rw: RealWoo, order_ids: set[int]) -> list[dict[str, Any]]:
    """Webhook deliveries WordPress sent to CartResQ about these orders, as sent, with the answers."""
    sent = []
    for request in rw.outgoing():
        headers = request["headers"] if isinstance(request["headers"], dict) else {}
        if not headers.get("X-WC-Webhook-Topic", "").startswith("order."):
            continue
        body = json.loads(request["body"])
        if int(body.get("id", 0)) in order_ids:
            sent.append({"topic": headers["X-WC-Webhook-Topic"], "delivery_id": headers["X-WC-Webhook-Delivery-ID"],
                         "status": request["status"], "answer": request["response_body"], "order": body["id"]})
    return sent


def _processed(rw: RealWoo) -> int:
    return int(rw.rows("SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NULL")[0][0]) == 0


def _applied(rw: RealWoo) -> int:
    """Webhook deliveries (not reconcile backfills) CartResQ processed without an error."""
    return int(rw.rows("SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NOT NULL AND error IS NULL "
                       "AND delivery_id NOT LIKE 'backfill-%'")[0][0])


def _carts(rw: RealWoo, tokens: list[str]) -> dict[str, Any]:
    rows = rw.rows("SELECT checkout_token, cart_token, email, status, total, restore_url FROM carts "
                   "WHERE checkout_token = ANY(:t)", t=tokens)
    return {r.checkout_token: r for r in rows}


def test_merchant_connects_by_approving_and_webhooks_are_created(connected: Connected) -> None:
    rw, page = connected
    assert "CartResQ is connected" in page
    hooks = rw.wpq("webhooks")
    assert sorted(h["topic"] for h in hooks) == ["customer.updated", "order.created", "order.updated",
                                                 "product.updated"]
    assert all(h["status"] == "active" and h["delivery_url"].startswith(rw.app_url + "/webhooks/woocommerce/")
               and h["secret_len"] >= 32 for h in hooks)
    [(count, store_name, currency)] = rw.rows(
        "SELECT count(w.id), s.domain, s.currency FROM stores s JOIN woo_webhooks w ON w.store_id = s.id "
        "WHERE s.platform = 'woocommerce' GROUP BY s.domain, s.currency")
    assert (count, currency) == (4, "EUR")


def test_a_burst_of_orders_in_one_request_all_become_carts(connected: Connected) -> None:
    rw, _ = connected
    before = _applied(rw)
    orders = rw.wpq("create-admin-orders", "6")  # as a bulk import: six orders in one request
    ids = {int(o["id"]) for o in orders}
    rw.run_queue()
    sent = wait_for("the deliveries", lambda: (s := _deliveries_for(rw, ids)) and len(s) >= 12 and s)
    wait_for("CartResQ to apply them", lambda: _processed(rw))
    applied = _applied(rw) - before
    repeated = len(sent) - len({(d["topic"], d["delivery_id"]) for d in sent})
    print(f"\n[realwoo {rw.storage}] burst: {len(sent)} deliveries sent by WooCommerce, {applied} applied by "
          f"CartResQ, "
          f"{repeated} with an X-WC-Webhook-Delivery-ID already used in that burst")
    assert all(d["status"] == 200 and json.loads(d["answer"])["status"] == "accepted" for d in sent), sent
    assert applied == len(sent)
    carts = _carts(rw, [f"wc-order-{i}" for i in ids])
    assert len(carts) == 6
    for order in orders:
        row = carts[f"wc-order-{order['id']}"]
        assert (row.status, f"{row.total:.2f}", row.email.endswith("@example.test")) == ("active", order["total"], True)


def test_order_status_changes_record_purchases_and_cancellations(connected: Connected) -> None:
    rw, _ = connected
    orders = rw.wpq("create-admin-orders", "2")
    ids = [int(o["id"]) for o in orders]
    rw.run_queue()
    wait_for("the carts", lambda: len(_carts(rw, [f"wc-order-{i}" for i in ids])) == 2)
    rw.wpq("set-statuses", f"{ids[0]},{ids[1]}:processing")  # a bulk action in wp-admin
    rw.run_queue()

    def orders(cancelled: int) -> list[Any] | None:
        rows = rw.rows("SELECT platform_order_id, cancelled_at FROM orders WHERE platform_order_id = ANY(:i) "
                       "ORDER BY platform_order_id", i=[str(i) for i in ids])
        done = len(rows) == 2 and sum(r.cancelled_at is not None for r in rows) == cancelled and _processed(rw)
        return rows if done else None

    wait_for("the purchases", lambda: orders(0))
    statuses = {token: r.status for token, r in _carts(rw, [f"wc-order-{i}" for i in ids]).items()}
    assert set(statuses.values()) == {"completed"}  # bought without a message of ours
    rw.wpq("set-status", f"{ids[1]}:cancelled")
    rw.run_queue()
    first, second = wait_for("the cancellation", lambda: orders(1))
    assert first.cancelled_at is None and second.cancelled_at is not None


def test_reconcile_backfills_a_missed_delivery(connected: Connected) -> None:
    rw, _ = connected
    rw.stop_app()  # CartResQ is down while the store sends the delivery
    [order] = rw.wpq("create-admin-orders", "1")
    rw.run_queue()
    [missed] = [d for d in _deliveries_for(rw, {int(order["id"])}) if d["topic"] == "order.created"]
    assert missed["status"] != 200
    rw.start_app()
    rw.rows_commit("UPDATE woo_connections SET next_reconcile_at = now() - interval '1 second'")
    row = wait_for("the reconcile", lambda: _carts(rw, [f"wc-order-{order['id']}"]).get(f"wc-order-{order['id']}"),
                   timeout=90)
    assert f"{row.total:.2f}" == order["total"]
    # from the store's order list (GET /orders?modified_after=...), not from a webhook
    assert rw.rows("SELECT count(*) FROM webhook_deliveries WHERE delivery_id LIKE :d", d=f"backfill-{order['id']}-%"
                   )[0][0] >= 1
    assert rw.rows("SELECT count(*) FROM webhook_deliveries WHERE delivery_id NOT LIKE 'backfill-%' AND "
                   "topic = 'order.created' AND processed_at IS NOT NULL")[0][0] >= 1


def test_a_guest_opening_the_recovery_link_gets_the_offer_coupon(
    connected: Connected, browser: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rw, _ = connected
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", rw.ca)  # requests lets the environment override verify=
    [order] = rw.wpq("create-admin-orders", "1")
    rw.run_queue()
    token = f"wc-order-{order['id']}"
    row = wait_for("the cart", lambda: _carts(rw, [token]).get(token))
    assert row.restore_url.startswith(rw.store_url + "/?cartresq_restore=")
    # The offer code as CartResQ makes it: restricted to the shopper's email (coupons.coupon_body)
    keys = rw.wpq("make-key")
    client = WooClient(rw.store_url, keys["consumer_key"], keys["consumer_secret"],
                       allow_private=True)  # the store is on loopback
    code = "rq" + secrets.token_hex(4)
    try:
        client.create_coupon(coupon_body(code, 10, utcnow() + timedelta(days=2), row.email))
    finally:
        client.close()
    context = browser.new_context()  # a new browser: no session, nobody logged in
    try:
        page = context.new_page()
        page.goto(f"{row.restore_url}&coupon={quote(code)}")
        assert "/checkout" in page.url
        cart = page.evaluate("fetch('/wp-json/wc/store/v1/cart').then(r => r.json())")
        assert [c["code"] for c in cart["coupons"]] == [code], cart.get("errors")
        assert int(cart["totals"]["total_discount"]) > 0
        assert cart["billing_address"]["email"] == row.email
    finally:
        context.close()


OPT_IN = '#cartresq_marketing_opt_in, input[id$="cartresq-marketing-opt-in"]'


@pytest.mark.parametrize("checkout", ["block", "classic"])
def test_a_shopper_leaving_the_checkout_with_an_email_is_one_cart(
    connected: Connected, browser: Any, checkout: str
) -> None:
    """A stock store (no consent plugin) based in Germany: the checkout's opt-in box is the consent."""
    rw, _ = connected
    url = f"{rw.store_url}/checkout/" if checkout == "block" else rw.classic_checkout()
    email = f"leaver.{checkout}.{rw.storage}@example.com"
    context = browser.new_context()
    failed: list[str] = []
    try:
        page = context.new_page()
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.request.method} {r.url}"))
        page.goto(f"{rw.store_url}/?add-to-cart=11")
        page.goto(url)
        field = "#email" if checkout == "block" else "#billing_email"
        page.wait_for_selector(field, timeout=30000)
        key = page.evaluate("fetch('/wp-json/wc/store/v1/cart').then(r => r.json())")["extensions"]["cartresq"][
            "cart_key"]
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
    assert failed == [], failed  # no request the storefront or the app refused


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
