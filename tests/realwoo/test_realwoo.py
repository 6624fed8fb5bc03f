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
from tests.realwoo.checks import carts, processed
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


def _applied(rw: RealWoo) -> int:
    """Webhook deliveries (not reconcile backfills) CartResQ processed without an error."""
    return int(rw.rows("SELECT count(*) FROM webhook_deliveries WHERE processed_at IS NOT NULL AND error IS NULL "
                       "AND delivery_id NOT LIKE 'backfill-%'")[0][0])


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


def test_the_store_is_named_by_its_site_title_and_its_address_has_one_country(connected: Connected) -> None:
    rw, _ = connected  # WordPress's site title; WooCommerce › Settings › General with country:state "DE:DE-BE"
    [(name, address)] = rw.rows("SELECT name, settings->>'postal_address' FROM stores WHERE domain = :d", d=rw.domain)
    assert (name, address) == ("CartResQ Real Woo", "Teststrasse 1, Berlin 10115, BE, DE")


def test_a_burst_of_orders_in_one_request_all_becomecarts(connected: Connected) -> None:
    rw, _ = connected
    before = _applied(rw)
    orders = rw.wpq("create-admin-orders", "6")  # as a bulk import: six orders in one request
    ids = {int(o["id"]) for o in orders}
    rw.run_queue()
    sent = wait_for("the deliveries", lambda: (s := _deliveries_for(rw, ids)) and len(s) >= 12 and s)
    wait_for("CartResQ to apply them", lambda: processed(rw))
    applied = _applied(rw) - before
    repeated = len(sent) - len({(d["topic"], d["delivery_id"]) for d in sent})
    print(f"\n[realwoo {rw.storage}] burst: {len(sent)} deliveries sent by WooCommerce, {applied} applied by "
          f"CartResQ, "
          f"{repeated} with an X-WC-Webhook-Delivery-ID already used in that burst")
    assert all(d["status"] == 200 and json.loads(d["answer"])["status"] == "accepted" for d in sent), sent
    assert applied == len(sent)
    made = carts(rw, [f"wc-order-{i}" for i in ids])
    assert len(made) == 6
    for order in orders:
        row = made[f"wc-order-{order['id']}"]
        assert (row.status, f"{row.total:.2f}", row.email.endswith("@example.test")) == ("active", order["total"], True)


def test_order_status_changes_record_purchases_and_cancellations(connected: Connected) -> None:
    rw, _ = connected
    orders = rw.wpq("create-admin-orders", "2")
    ids = [int(o["id"]) for o in orders]
    rw.run_queue()
    wait_for("the carts", lambda: len(carts(rw, [f"wc-order-{i}" for i in ids])) == 2)
    rw.wpq("set-statuses", f"{ids[0]},{ids[1]}:processing")  # a bulk action in wp-admin
    rw.run_queue()

    def orders(cancelled: int) -> list[Any] | None:
        rows = rw.rows("SELECT platform_order_id, cancelled_at FROM orders WHERE platform_order_id = ANY(:i) "
                       "ORDER BY platform_order_id", i=[str(i) for i in ids])
        done = len(rows) == 2 and sum(r.cancelled_at is not None for r in rows) == cancelled and processed(rw)
        return rows if done else None

    wait_for("the purchases", lambda: orders(0))
    statuses = {token: r.status for token, r in carts(rw, [f"wc-order-{i}" for i in ids]).items()}
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
    # The store's reconcile is due when CartResQ is back: its dispatcher's first pass takes it (not 30 s later).
    rw.rows_commit("UPDATE woo_connections SET next_reconcile_at = now() - interval '1 second'")
    rw.start_app()
    token = f"wc-order-{order['id']}"

    def backfilled() -> Any:  # from the store's order list (GET /orders?modified_after=...), not from a webhook
        applied = rw.rows("SELECT count(*) FROM webhook_deliveries WHERE delivery_id LIKE :d AND processed_at IS NOT "
                          "NULL AND error IS NULL", d=f"backfill-{order['id']}-%")[0][0]
        return applied and carts(rw, [token]).get(token)

    row = wait_for("the reconcile", backfilled, timeout=90)
    assert f"{row.total:.2f}" == order["total"]
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
    row = wait_for("the cart", lambda: carts(rw, [token]).get(token))
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
