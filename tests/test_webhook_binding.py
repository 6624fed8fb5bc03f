"""Issue 18, finding 3: Shopify signs the body only, so the unsigned headers (topic, shop, ids, time) must
agree with it. A genuine body replayed under other headers erases nothing and is stored nowhere."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

import connectors
from app.runtime import Runtime
from connectors.shopify import read_headers
from recovery.intake import deliveries as intake
from recovery.storage import tables as t
from tests.conftest import add_store, drain
from tests.support import shopify
from tests.support.shopify import SHOP

OTHER = "quiet-harbor.myshopify.com"


def count(rt: Runtime, model: type) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def post_raw(client, body: bytes, topic: str, **headers: str):  # type: ignore[no-untyped-def]
    sent = shopify.headers(body, topic)
    sent.update(headers)
    return client.post("/webhooks/shopify", data=body, headers=sent)


def two_shops_with_carts(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    add_store(rt, SHOP)
    add_store(rt, OTHER)
    body = json.dumps(shopify.load("checkouts_create")).encode()
    assert post_raw(client, body, "checkouts/create", **{"X-Shopify-Shop-Domain": OTHER}).status_code == 200
    drain(rt)
    assert count(rt, t.Cart) == 1


def test_a_checkout_body_replayed_as_shop_redact_for_another_shop_erases_nothing(runtime: Runtime, client) -> None:
    # Given shop B (OTHER) with a cart, and a genuine signed checkouts/create body of shop A
    two_shops_with_carts(runtime, client)
    body = json.dumps(shopify.load("checkouts_create")).encode()
    # When the body is resent with X-Shopify-Topic: shop/redact and shop B's domain
    response = post_raw(client, body, "shop/redact", **{"X-Shopify-Shop-Domain": OTHER})
    drain(runtime)
    # Then it is refused before anything is stored, and shop B and its cart are still there
    assert response.status_code == 400 and "shop/redact" in response.json["detail"]
    assert count(runtime, t.Store) == 2 and count(runtime, t.Cart) == 1
    assert count(runtime, t.WebhookDelivery) == 1  # only shop B's own checkout


@pytest.mark.parametrize("topic, fixture", [
    ("shop/redact", "shop_redact"),
    ("customers/redact", "customers_redact"),
    ("customers/data_request", "customers_data_request"),
])
def test_a_compliance_body_naming_shop_a_is_refused_under_shop_b(runtime: Runtime, client, topic: str, fixture: str) -> None:
    # Given shop B with a cart, and shop A's own genuine compliance body (shop_domain = shop A)
    two_shops_with_carts(runtime, client)
    body = json.dumps(shopify.load(fixture)).encode()
    # When it arrives under shop B's domain
    response = post_raw(client, body, topic, **{"X-Shopify-Shop-Domain": OTHER})
    drain(runtime)
    # Then 400, nothing stored, nothing erased
    assert response.status_code == 400 and "another shop" in response.json["detail"]
    assert (count(runtime, t.Store), count(runtime, t.Cart), count(runtime, t.WebhookDelivery)) == (2, 1, 1)


@pytest.mark.parametrize("topic, payload", [
    ("shop/redact", {"shop_domain": SHOP}),  # no shop_id
    ("shop/redact", {"shop_id": 61873294471, "shop_domain": SHOP, "customer": {"id": 1}}),  # a customers/redact
    ("customers/redact", {"shop_id": 61873294471, "shop_domain": SHOP}),  # names no customer
    ("customers/redact", {"shop_id": 61873294471, "shop_domain": SHOP, "customer": {}}),
    ("customers/data_request", {"shop_id": 61873294471, "shop_domain": SHOP, "customer": {"id": 1}}),  # no request id
])
def test_a_body_that_does_not_fit_its_compliance_topic_is_refused(runtime: Runtime, client, topic: str, payload: dict) -> None:  # type: ignore[type-arg]
    add_store(runtime, SHOP)
    response = post_raw(client, json.dumps(payload).encode(), topic)
    assert response.status_code == 400 and topic in response.json["detail"]
    assert count(runtime, t.WebhookDelivery) == 0 and count(runtime, t.Store) == 1


def test_a_stored_redaction_naming_another_shop_is_rejected_by_the_worker(runtime: Runtime, client) -> None:
    # Given a shop/redact for shop A already stored under shop B (e.g. recorded before the edge check)
    two_shops_with_carts(runtime, client)
    with runtime.engine.begin() as conn:
        pk, status = intake.record_delivery(
            conn, platform="shopify", shop=OTHER, topic="shop/redact", delivery_id="replayed",
            triggered_at=datetime.now(UTC), payload=shopify.load("shop_redact"), always=True,
        )
    # When the worker processes it
    with runtime.sessions.begin() as session:
        outcome = intake.process_delivery(session, pk, connectors.normalize)  # type: ignore[arg-type]
    # Then shop B is not erased, and the delivery says why
    assert outcome == "bad payload: the body names another shop"
    assert count(runtime, t.Store) == 2 and count(runtime, t.Cart) == 1


def test_a_shop_payload_naming_another_myshopify_domain_is_refused(runtime: Runtime, client) -> None:
    add_store(runtime, SHOP)
    body = json.dumps({"id": 1, "domain": "shop.example.com", "myshopify_domain": OTHER}).encode()
    response = post_raw(client, body, "checkouts/create")
    assert response.status_code == 400 and count(runtime, t.WebhookDelivery) == 0


def test_the_same_event_under_a_new_delivery_id_is_a_duplicate(runtime: Runtime, client) -> None:
    add_store(runtime, SHOP)
    body = json.dumps(shopify.load("checkouts_create")).encode()
    event = str(uuid.uuid4())
    first = post_raw(client, body, "checkouts/create", **{"X-Shopify-Event-Id": event})
    again = post_raw(client, body, "checkouts/create", **{"X-Shopify-Event-Id": event})
    # the same event id on another topic is another delivery (one action fans out to several topics)
    other_topic = post_raw(client, body, "checkouts/update", **{"X-Shopify-Event-Id": event})
    assert [r.json["status"] for r in (first, again, other_topic)] == ["accepted", "duplicate", "accepted"]
    assert count(runtime, t.WebhookDelivery) == 2


@pytest.mark.parametrize("age, ok", [(timedelta(hours=47), True), (timedelta(hours=49), False), (-timedelta(hours=1), False)])
def test_triggered_at_outside_the_retry_horizon_is_refused(runtime: Runtime, client, age: timedelta, ok: bool) -> None:
    add_store(runtime, SHOP)
    body = json.dumps(shopify.load("checkouts_create")).encode()
    at = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    response = post_raw(client, body, "checkouts/create", **{"X-Shopify-Triggered-At": at})
    assert response.status_code == (200 if ok else 400)
    assert count(runtime, t.WebhookDelivery) == (1 if ok else 0)


def test_read_headers_uses_the_given_clock() -> None:
    now = datetime(2026, 9, 16, 12, 0, tzinfo=UTC)
    base = {"X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": SHOP, "X-Shopify-Webhook-Id": "w1"}
    fresh = read_headers({**base, "X-Shopify-Triggered-At": "2026-09-15T12:00:01Z"}, now=now)
    stale = read_headers({**base, "X-Shopify-Triggered-At": "2026-09-14T11:59:59Z"}, now=now)
    missing = read_headers(base, now=now)
    assert not isinstance(fresh, str) and fresh.triggered_at == datetime(2026, 9, 15, 12, 0, 1, tzinfo=UTC)
    assert isinstance(stale, str) and "retry horizon" in stale
    assert isinstance(missing, str) and "Triggered-At" in missing


@pytest.mark.parametrize("body", [
    b'{"id": 1, "note": "\\ud800"}',  # a lone surrogate: PostgreSQL's json would refuse it on every retry
    b"[" * 5000 + b"]" * 5000,  # deeper than the parser's limit (json.loads raised RecursionError: a 500)
    b'{"a":' * 600 + b"1" + b"}" * 600,  # parsed, but deeper than anything downstream can recurse into
    b'{"total_price": NaN}',
])
def test_a_signed_body_that_could_never_be_stored_is_400_not_a_retry_loop(runtime: Runtime, client, body: bytes) -> None:
    add_store(runtime, SHOP)
    response = post_raw(client, body, "checkouts/create")
    assert response.status_code == 400 and count(runtime, t.WebhookDelivery) == 0
