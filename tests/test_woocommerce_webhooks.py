"""WooCommerce deliveries through the real endpoint, signed per webhook, into the shared recovery loop."""

from __future__ import annotations

from decimal import Decimal

import json
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import func, select

from connectors.woocommerce.reconcile import run_due
from connectors.woocommerce.restore import read_token
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.storage.tables import utcnow
from tests.conftest import ENCRYPTION_KEY, drain
from tests.loop_helpers import HOUR, abandon_all, cart, messages, now, send_due
from tests.support.fake_woocommerce import load
from tests.woo_helpers import Woo, woo, woo_any_broker  # noqa: F401  (fixtures)


def _gmt(at) -> str:  # type: ignore[no-untyped-def]
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _deliveries(w: Woo) -> int:
    with w.rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(t.WebhookDelivery)) or 0)


def _carts(w: Woo) -> list[t.Cart]:
    with w.rt.sessions() as session:
        return list(session.scalars(select(t.Cart).order_by(t.Cart.id)))


def test_bad_or_missing_signature_is_401_and_writes_nothing(woo: Woo) -> None:  # noqa: F811
    payload = load("order_created__classic_pending")
    body, headers = woo.store.signed("order.created", payload, secret="not-the-secret")  # noqa: S106
    assert woo.client.post(woo.webhook_path, data=body, headers=headers).status_code == 401
    # another webhook's secret is not this one's
    other = woo.store.secrets[woo.store.hook_for("product.updated")["id"]]
    body, headers = woo.store.signed("order.created", payload, secret=other)
    assert woo.client.post(woo.webhook_path, data=body, headers=headers).status_code == 401
    # a valid signature over a changed body
    body, headers = woo.store.signed("order.created", payload)
    assert woo.client.post(woo.webhook_path, data=body + b" ", headers=headers).status_code == 401
    del headers["X-WC-Webhook-Signature"]
    answer = woo.client.post(woo.webhook_path, data=body, headers=headers)
    assert answer.status_code == 401 and "X-WC-Webhook-Signature" in answer.get_json()["detail"]
    assert _deliveries(woo) == 0 and _carts(woo) == []


def test_signed_but_malformed_deliveries_are_precise_4xx(woo: Woo) -> None:  # noqa: F811
    body, headers = woo.store.signed("order.created", {"id": 1})
    del headers["X-WC-Webhook-Delivery-ID"]
    answer = woo.client.post(woo.webhook_path, data=body, headers=headers)
    assert answer.status_code == 400 and "Delivery-ID" in answer.get_json()["detail"]
    assert _deliveries(woo) == 0


def test_a_redelivered_delivery_id_is_stored_once(woo: Woo) -> None:  # noqa: F811
    body, headers = woo.store.signed("order.created", load("order_created__classic_pending"))
    first = woo.client.post(woo.webhook_path, data=body, headers=headers)
    second = woo.client.post(woo.webhook_path, data=body, headers=headers)
    assert (first.get_json()["status"], second.get_json()["status"]) == ("accepted", "duplicate")
    drain(woo.rt)
    assert _deliveries(woo) == 1 and len(_carts(woo)) == 1


def test_a_burst_within_one_second_is_applied_whole(woo: Woo) -> None:  # noqa: F811
    # WooCommerce's X-WC-Webhook-Delivery-ID is wp_hash(webhook id . time): one value for a whole second
    woo.store.clock = lambda: 1_800_000_000
    stamp = _gmt(now())
    base = load("order_created__classic_pending")
    sent = []
    for n in range(4):  # four orders created in one request
        billing = {**base["billing"], "email": f"burst{n}@example.com"}
        body, headers = woo.store.signed(
            "order.created", {**base, "id": 9000 + n, "number": str(9000 + n), "billing": billing,
                              "date_modified_gmt": stamp}
        )
        sent.append(headers["X-WC-Webhook-Delivery-ID"])
        assert woo.client.post(woo.webhook_path, data=body, headers=headers).get_json()["status"] == "accepted"
    # and one order changed twice within that second (same date_modified_gmt, another total)
    for total in ("10.00", "12.00"):
        body, headers = woo.store.signed("order.updated", {**base, "id": 9000, "total": total,
                                                            "date_modified_gmt": stamp})
        sent.append(headers["X-WC-Webhook-Delivery-ID"])
        assert woo.client.post(woo.webhook_path, data=body, headers=headers).get_json()["status"] == "accepted"
    drain(woo.rt)
    assert len(set(sent)) == 2  # the header repeats: deduplicating on it would drop 4 of these 6
    assert _deliveries(woo) == 6
    carts = {c.checkout_token: c for c in _carts(woo)}
    assert sorted(carts) == [f"wc-order-{9000 + n}" for n in range(4)]
    assert str(carts["wc-order-9000"].total) == "12.00"


def test_of_two_states_in_one_second_the_later_delivery_wins_in_either_order(woo: Woo) -> None:  # noqa: F811
    """date_modified_gmt has whole seconds: two changes in one second carry the same time. Workers may take
    the two deliveries in either order; the cart keeps the later-received state (it kept the last applied)."""
    import connectors
    from recovery.intake.deliveries import process_delivery

    stamp = _gmt(now())
    base = load("order_created__classic_pending")
    for total in ("10.00", "12.00"):
        body, headers = woo.store.signed("order.updated", {**base, "id": 9100, "total": total, "date_modified_gmt": stamp})
        assert woo.client.post(woo.webhook_path, data=body, headers=headers).get_json()["status"] == "accepted"
    with woo.rt.sessions() as session:
        first, second = session.scalars(select(t.WebhookDelivery.id).order_by(t.WebhookDelivery.id)).all()
    outcomes = []
    for pk in (second, first):  # another worker took the later one first
        with woo.rt.sessions.begin() as session:
            outcomes.append(process_delivery(session, pk, connectors.normalize, woo.rt.timing))
    assert outcomes[1] == "stale: a later delivery of the same time is stored"
    [cart] = _carts(woo)
    assert str(cart.total) == "12.00"


def test_a_nul_in_an_item_name_is_stored_as_a_replacement_character(woo: Woo) -> None:  # noqa: F811
    # PostgreSQL's jsonb and text cannot hold U+0000; the delivery must not fail on every retry
    items = load("order_created__classic_pending")["line_items"]
    items[0]["name"] = "Teapot\u0000 XL"
    response = woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()), line_items=items)
    assert response.status_code == 200 and response.get_json()["status"] == "accepted"
    [row] = _carts(woo)
    assert row.line_items[0]["title"] == "Teapot\ufffd XL"


def test_pending_order_is_a_cart_that_gets_abandoned_and_planned(woo: Woo) -> None:  # noqa: F811
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()))
    [row] = _carts(woo)
    assert (row.checkout_token, row.email, row.phone, row.currency) == (
        "wc-order-7311",
        "lena.brandt@example.com",
        "+493415550123",  # billing "+49 341 5550123", in E.164 as SMS, STOP replies and suppressions name it
        "EUR",
    )
    assert str(row.total) == "78.20" and [i["unit_price"] for i in row.line_items] == ["24.37", "12.61"]
    # The restore link is the plugin's, signed with the secret the plugin holds
    assert row.restore_url and row.restore_url.startswith(f"{woo.store.url}/?cartresq_restore=")
    token = row.restore_url.split("=", 1)[1]
    body = read_token(woo.store.plugin_settings["restore_secret"], token, now())  # type: ignore[index]
    assert body["i"] == [[412, 418, 2], [377, 0, 1]] and body["o"] == 7311
    at = now() + 2 * HOUR
    assert abandon_all(woo.rt, at) == [row.id]
    assert [(m.step, m.channel, m.status) for m in messages(woo.rt, row.id)][:2] == [
        (1, "email", "planned"),
        (2, "email", "planned"),
    ]


def test_block_checkout_draft_is_a_cart_too(woo: Woo) -> None:  # noqa: F811
    woo.deliver("order_updated__block_checkout_draft", date_modified_gmt=_gmt(now()))
    [row] = _carts(woo)
    assert (row.email, row.status, row.currency, str(row.total)) == (
        "jonas.weber@example.com",
        "active",
        "USD",
        "29.90",
    )


def test_stale_state_never_overwrites_a_newer_one(woo: Woo) -> None:  # noqa: F811
    stamp = now()
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(stamp), total="90.00")
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(stamp - HOUR), total="11.00")
    [row] = _carts(woo)
    assert str(row.total) == "90.00"


def test_paid_order_after_a_message_is_recovered_and_stops_the_rest(woo_any_broker: Woo) -> None:  # noqa: F811
    woo = woo_any_broker  # noqa: F811
    # A US shopper: WooCommerce orders carry no marketing consent, and the policy needs one for the EU
    us = {**load("order_created__classic_pending")["billing"], "country": "US", "state": "OR"}
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()), billing=us)
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(woo.rt, at)
    assert send_due(woo.rt, at + 5 * HOUR) == ["sent"]
    [email] = woo.fake.sent
    assert email.to == "lena.brandt@example.com" and "Linen Apron" in email.html  # type: ignore[union-attr]
    paid = _gmt(now() + timedelta(minutes=1))  # *_gmt has whole seconds: strictly after the send
    woo.deliver("order_updated__processing", date_paid_gmt=paid, date_modified_gmt=paid)
    assert cart(woo.rt, cart_id).status == "recovered"
    assert [m.status for m in messages(woo.rt, cart_id)][1:] == ["cancelled"] * (
        len(messages(woo.rt, cart_id)) - 1
    )
    assert send_due(woo.rt, at + 200 * HOUR) == [] and len(woo.fake.sent) == 1
    # and a cancellation afterwards un-counts the recovery
    woo.deliver("order_updated__cancelled", date_modified_gmt=_gmt(now()))
    with woo.rt.sessions() as session:
        order = session.scalars(select(t.Order)).one()
    assert order.cancelled_at is not None and cart(woo.rt, cart_id).status == "abandoned"


def test_paid_statuses_follow_the_store_setting(woo: Woo) -> None:  # noqa: F811
    with woo.rt.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        store.settings = {**store.settings, "woo_paid_statuses": ["processing", "completed"]}
    woo.deliver("order_updated__processing", status="on-hold", date_modified_gmt=_gmt(now()))
    with woo.rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(t.Order)) == 0
        assert session.scalars(select(t.WebhookDelivery.outcome)).one().startswith("order status on-hold")


def test_outage_is_backfilled_by_reconcile(woo: Woo) -> None:  # noqa: F811
    # Given orders changed on the store while no webhook reached us
    start = now()
    woo.store.put_order(load("order_created__classic_pending"), start + timedelta(seconds=5))
    draft = load("order_updated__block_checkout_draft")
    woo.store.put_order(draft, start + timedelta(seconds=6))
    paid = {
        **load("order_updated__processing"),
        "id": 7500,
        "number": "7500",
        "date_paid_gmt": _gmt(start + timedelta(seconds=7)),
    }
    paid["billing"] = {**paid["billing"], "email": "ines.kraft@example.com"}
    woo.store.put_order(paid, start + timedelta(seconds=7))
    assert _carts(woo) == []
    filled_before = REGISTRY.get_sample_value("cartresq_reconciliation_fills_total", {"platform": "woocommerce"}) or 0.0
    # When the periodic reconcile runs
    with woo.rt.sessions.begin() as session:
        session.scalars(select(t.WooConnection)).one().next_reconcile_at = utcnow()
    [report] = run_due(
        woo.rt.sessions,
        woo.rt.engine,
        Vault([ENCRYPTION_KEY]),
        utcnow(),
        every=900,
        app_url=woo.live.url,
        allow_http=True,
        allow_private=True,  # the fake store listens on 127.0.0.1
        hand_off=woo.rt.hand_off_delivery,
    )
    drain(woo.rt)
    # Then both carts and the order are there, and the next pass starts after the newest change
    assert report.error is None and report.backfilled == 3
    filled = REGISTRY.get_sample_value("cartresq_reconciliation_fills_total", {"platform": "woocommerce"})
    assert filled == filled_before + 3  # the operators' counter (GET /metrics) too
    assert {c.checkout_token for c in _carts(woo)} == {"wc-order-7311", "wc-order-7402"}
    with woo.rt.sessions() as session:
        assert session.scalars(select(t.Order.platform_order_id)).all() == ["7500"]
        synced = session.scalars(select(t.WooConnection.orders_synced_to)).one()
    assert synced is not None and synced >= (start + timedelta(seconds=7)).replace(microsecond=0)
    # A second pass stores no duplicates
    with woo.rt.sessions.begin() as session:
        session.scalars(select(t.WooConnection)).one().next_reconcile_at = utcnow()
    [again] = run_due(
        woo.rt.sessions,
        woo.rt.engine,
        Vault([ENCRYPTION_KEY]),
        utcnow(),
        every=900,
        app_url=woo.live.url,
        allow_http=True,
        allow_private=True,  # the fake store listens on 127.0.0.1
        hand_off=woo.rt.hand_off_delivery,
    )
    assert again.backfilled == 0


def test_product_update_records_the_price_without_touching_carts(woo: Woo) -> None:  # noqa: F811
    answer = woo.post("product.updated", load("product_updated"))
    assert answer.status_code == 200
    drain(woo.rt)
    with woo.rt.sessions() as session:
        assert session.scalars(select(t.WebhookDelivery.outcome)).one() == "prices recorded (1 variants)"
        price = session.scalars(select(t.VariantPrice)).one()  # the price-drop flow's fact (recovery/flows)
        assert (price.variant_id, price.price) == ("412", Decimal("24.00"))
        assert session.scalars(select(t.Cart)).all() == []


def test_beacons_draft_and_order_of_one_shopper_cart_are_one_cart(woo: Woo) -> None:  # noqa: F811
    # The plugin's cart key (extensions.cartresq.cart_key on the Store API cart, order meta at checkout)
    key = "wc-" + "5e" * 20
    beacon = {"v": 1, "shop": woo.store_row().domain, "sid": "k3JxQ9vT2mWb7YzA", "type": "cart",
              "ts": int((now() - HOUR).timestamp() * 1000),
              "cart": {"token": key, "currency": "USD", "total": 2990, "count": 1,
                       "items": [{"product_id": 12, "quantity": 1, "price": 2990, "title": "Mug"}]}}
    for _ in range(2):  # two beacons, one cart (the Store API Cart-Token header changes on every response)
        answer = woo.client.post("/track", data=json.dumps(beacon), headers={
            "Content-Type": "text/plain;charset=UTF-8", "Origin": f"https://{beacon['shop']}"})
        assert answer.status_code in (200, 204), answer.get_data()
    assert len(_carts(woo)) == 1
    meta = [{"id": 91, "key": "_cartresq_cart_key", "value": key}]
    woo.deliver("order_updated__block_checkout_draft", date_modified_gmt=_gmt(now()), meta_data=meta)
    paid = _gmt(now() + timedelta(minutes=1))
    woo.deliver("order_updated__processing", id=7402, number="7402", date_paid_gmt=paid, date_modified_gmt=paid,
                meta_data=meta)
    [row] = _carts(woo)
    assert (row.cart_token, row.checkout_token, row.email) == (key, "wc-order-7402", "jonas.weber@example.com")
    with woo.rt.sessions() as session:
        assert session.scalars(select(t.Order.cart_token)).all() == [key]
    # a key that is not the plugin's shape is not trusted as one
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()),
                meta_data=[{"id": 92, "key": "_cartresq_cart_key", "value": key + "' OR 1"}])
    assert [c.cart_token for c in _carts(woo)] == [key, None]


def test_a_tracker_cart_restores_through_the_plugins_endpoint(woo: Woo) -> None:  # noqa: F811
    us = {**load("order_created__classic_pending")["billing"], "country": "US", "state": "OR"}
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()), billing=us)
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(woo.rt, at)
    assert send_due(woo.rt, at + 5 * HOUR) == ["sent"]
    with woo.rt.sessions.begin() as session:  # as a cart known only from the storefront tracker
        session.get(t.Cart, cart_id).restore_url = None
    [message] = messages(woo.rt, cart_id)[:1]
    answer = woo.client.get(f"/r/{woo.rt.sender.links.sign('restore', message.id, cart_id)}")
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(f"{woo.store.url}/?cartresq_restore=")
    body = read_token(woo.store.plugin_settings["restore_secret"], location.split("=", 1)[1], now())  # type: ignore[index]
    # the variation's id where there is one (WooCommerce finds its product), and the email for the coupon
    assert (body["i"], body["m"]) == ([[418, 0, 2], [377, 0, 1]], "lena.brandt@example.com")


def test_a_billing_phone_in_national_format_is_read_in_the_billing_country(woo: Woo) -> None:  # noqa: F811
    billing = {**load("order_created__classic_pending")["billing"], "phone": "0341 5550123"}  # country DE
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()), billing=billing)
    [row] = _carts(woo)
    assert row.phone == "+493415550123"
