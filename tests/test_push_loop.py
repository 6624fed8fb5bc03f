"""Web push as a step of a store's sequence, end to end: a Shopify checkout, a subscription through
POST /push/subscribe, abandonment, the send job, pywebpush over https to a push service that checks VAPID
and decrypts the payload; 410 deletes the subscription; no subscription at send time cancels."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.intake import subscriptions as push
from recovery.storage import tables as t
from recovery.sending.send import SEND_ACTOR
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, claim, daytime, messages, set_store
from tests.support import shopify
from tests.support.fake_http import FakeServer
from tests.support.push_service import VAPID_PRIVATE, PushService, https_push_service

APP_URL = "https://app.example.com"
ORIGIN = {"Origin": f"https://{shopify.SHOP}"}
PUSH_FIRST = [
    {"channel": "push", "template": "gentle_reminder", "delay": None},
    {"channel": "email", "template": "value_proposition", "delay": 24 * 3600},
]


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeServer, PushService]]:
    with https_push_service(tmp_path) as (server, handler, bundle):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # requests (pywebpush) trusts the local CA
        yield server, handler


@pytest.fixture
def rt(database_url: str, tmp_path: Path, service: tuple[FakeServer, PushService]) -> Iterator[Runtime]:
    settings = make_settings(
        database_url,
        tmp_path,
        app_url=APP_URL,
        vapid_private_key=VAPID_PRIVATE,
        vapid_subject="ops@example.com",
        allow_private_hosts=True,  # the fake push service listens on 127.0.0.1
    )
    runtime = build_runtime(settings, seed=3)
    add_store(runtime)
    set_store(runtime, holdout_percent=0, sequence=PUSH_FIRST)
    yield runtime
    runtime.close()


def checkout(n: int, **changes: Any) -> dict[str, Any]:
    """The fixture checkout as shopper n: its own ids, tokens, email and phone."""
    text = json.dumps(shopify.load("checkouts_update"))
    for old, new in [
        ("maren.holloway@example.com", f"shopper{n}@example.com"),
        ("+18285550147", f"+1828555{150 + n:04d}"),
        ("7c3e9a41d2b85f60e1a4c97d3b2f8e05", f"7c3e9a41d2b85f60e1a4c97d3b2f{n:04d}"),
        ("Z2NwLXVzLWVhc3QxOjAxSzVGM1FXOFoyTlhSN1ZENFRDSjZIQjlN", f"cart-token-{n}"),
        ("37214586900521", str(37214586900521 + n)),
        ("7902461835305", str(7902461835305 + n)),
    ]:
        text = text.replace(old, new)
    return {**json.loads(text), **changes}


def shopper(rt: Runtime, n: int, endpoint_name: str | None, service: tuple[FakeServer, PushService]) -> int:
    """A checkout through the webhook, then (if named) a push subscription from the storefront; the cart id."""
    client = create_app(runtime=rt).test_client()
    assert shopify.post(client, "checkouts_update", payload=checkout(n)).status_code == 200
    drain(rt)
    if endpoint_name is not None:
        server, handler = service
        doc = {
            "shop": shopify.SHOP,
            "sid": f"sid-{n}-abcdefghijkl",
            "cart_token": f"cart-token-{n}",
            "subscription": handler.subscribe(server.url, endpoint_name),
        }
        response = client.post("/push/subscribe", json=doc, headers=ORIGIN)
        assert response.status_code == 201, response.get_json()
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN["Origin"]
    with rt.sessions() as session:
        return session.scalars(select(t.Cart.id).where(t.Cart.cart_token == f"cart-token-{n}")).one()


def send_first_steps(rt: Runtime) -> list[int]:
    base = daytime(10)
    abandon_all(rt, base)
    claimed = claim(rt, base + 5 * HOUR)
    rt.broker.get_actor(SEND_ACTOR).fn(claimed)  # the send actor's own code, as a worker runs it
    return claimed


def test_a_push_step_reaches_the_browser_and_a_410_deletes_the_subscription(
    rt: Runtime, service: tuple[FakeServer, PushService]
) -> None:
    server, handler = service
    kept = shopper(rt, 1, "kept", service)
    gone = shopper(rt, 2, "gone", service)

    send_first_steps(rt)

    # Exactly one encrypted, VAPID-signed POST reached the push service for the live subscription.
    live = [r for r in server.requests if r.path == "/push/kept"]
    assert len(live) == 1
    headers = live[0].headers
    assert headers["Authorization"].startswith("vapid t=") and ",k=" in headers["Authorization"]
    assert headers["Content-Encoding"] == "aes128gcm" and headers["Ttl"] == str(12 * 3600)
    [(path, payload)] = handler.delivered
    assert path == "/push/kept"
    assert payload["title"] == shopify.SHOP  # the store's name (no name set: its domain)
    assert payload["body"] == "You left items in your cart. It's saved: tap to pick up where you left off."
    assert payload["url"].startswith(f"{APP_URL}/r/")
    assert b"shopper1@example.com" not in live[0].body  # the body is ciphertext

    by_cart = {m.cart_id: m for m in messages(rt) if m.step == 1}
    assert (by_cart[kept].channel, by_cart[kept].status) == ("push", "sent")
    assert by_cart[kept].provider_message_id.endswith("/m/1")
    assert by_cart[gone].status == "failed"
    assert by_cart[gone].reason == "provider refused: push 410: subscription expired or unsubscribed"
    with rt.sessions() as session:
        endpoints = [s.endpoint for s in session.scalars(select(t.PushSubscription))]
    assert endpoints == [f"{server.url}/push/kept"]  # the 410 deleted the other one
    assert len([r for r in server.requests if r.path == "/push/gone"]) == 1  # and it was never retried


def test_the_restore_link_in_the_notification_opens_the_cart(
    rt: Runtime, service: tuple[FakeServer, PushService]
) -> None:
    _, handler = service
    shopper(rt, 1, "kept", service)
    send_first_steps(rt)
    [(_, payload)] = handler.delivered
    response = create_app(runtime=rt).test_client().get(payload["url"].removeprefix(APP_URL))
    assert response.status_code in (302, 303) and "Location" in response.headers


def test_no_subscription_at_send_time_cancels_the_push_step(
    rt: Runtime, service: tuple[FakeServer, PushService]
) -> None:
    server, _ = service
    cart_id = shopper(rt, 1, "kept", service)
    base = daytime(10)
    abandon_all(rt, base)
    with rt.sessions.begin() as session:  # the browser unsubscribed after abandonment (a 410 elsewhere)
        assert push.delete_subscription(session, f"{server.url}/push/kept") == 1
    claimed = claim(rt, base + 5 * HOUR)
    rt.broker.get_actor(SEND_ACTOR).fn(claimed)

    [first] = [m for m in messages(rt, cart_id) if m.step == 1]
    assert (first.channel, first.status, first.reason, first.attempts) == (
        "push",
        "cancelled",
        "no_push_subscription",
        0,
    )
    assert server.requests == []


def test_a_cart_without_a_subscription_gets_no_push_step(
    rt: Runtime, service: tuple[FakeServer, PushService]
) -> None:
    cart_id = shopper(rt, 1, None, service)
    abandon_all(rt, daytime(10))
    assert [(m.step, m.channel) for m in messages(rt, cart_id)] == [(2, "email")]


def test_the_default_sequence_has_no_push_step(rt: Runtime, service: tuple[FakeServer, PushService]) -> None:
    with rt.sessions.begin() as session:
        store = session.scalars(select(t.Store)).one()
        store.settings = {k: v for k, v in store.settings.items() if k != "sequence"}
    cart_id = shopper(rt, 1, "kept", service)
    abandon_all(rt, daytime(10))
    assert "push" not in {m.channel for m in messages(rt, cart_id)}


def test_a_shopper_without_a_phone_still_gets_push(
    rt: Runtime, service: tuple[FakeServer, PushService]
) -> None:
    server, handler = service
    client = create_app(runtime=rt).test_client()
    payload = checkout(1)
    text = json.dumps(payload).replace('"+18285550151"', "null")
    shopify.post(client, "checkouts_update", payload={**json.loads(text), "sms_marketing_phone": None})
    drain(rt)
    doc = {
        "shop": shopify.SHOP,
        "cart_token": "cart-token-1",
        "subscription": handler.subscribe(server.url, "p"),
    }
    assert client.post("/push/subscribe", json=doc, headers=ORIGIN).status_code == 201
    send_first_steps(rt)
    [first] = [m for m in messages(rt) if m.step == 1]
    assert (first.status, first.reason) == ("sent", None)
    assert len(handler.delivered) == 1
