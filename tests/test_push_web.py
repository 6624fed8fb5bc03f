"""The storefront side of web push: VAPID public key, service worker script, Shopify app proxy routes
(signature checked), and POST /push/subscribe with the same origin rule as POST /track."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from tests.conftest import add_store, make_settings
from tests.loop_helpers import set_store
from tests.support.push_service import VAPID_PRIVATE, VAPID_PUBLIC
from tests.support.shopify import SECRET, SHOP

SUBSCRIPTION = {
    "endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
    "expirationTime": None,
    "keys": {"p256dh": "B" + "x" * 86, "auth": "y" * 22},
}
SHOP_ORIGIN = f"https://{SHOP}"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = make_settings(
        database_url, tmp_path, vapid_private_key=VAPID_PRIVATE, vapid_subject="ops@example.com"
    )
    runtime = build_runtime(settings)
    add_store(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def subscriptions(rt: Runtime) -> list[tuple[int, str]]:
    with rt.sessions() as session:
        return [(s.store_id, s.endpoint) for s in session.scalars(select(t.PushSubscription))]


def proxy_query(secret: str = SECRET, shop: str = SHOP, timestamp: int | None = None, **extra: str) -> str:
    """What Shopify appends to a proxied request: hex HMAC-SHA256 of the sorted `key=value` pairs, joined
    without separators, signed with the app's client secret."""
    params = {
        "shop": shop,
        "logged_in_customer_id": "",
        "path_prefix": "/apps/cartresq",
        "timestamp": str(timestamp or int(time.time())),
        **extra,
    }
    message = "".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return urlencode(params)


# --- key and script -------------------------------------------------------------------------------------


def test_the_public_key_is_the_application_server_key_of_our_vapid_key(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/push/key")
    assert response.status_code == 200 and response.get_json() == {"publicKey": VAPID_PUBLIC}
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_no_key_without_web_push_configured(database_url: str, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(database_url, tmp_path))
    try:
        response = create_app(runtime=runtime).test_client().get("/push/key")
        assert response.status_code == 404 and response.get_json() == {"error": "web push is not configured"}
    finally:
        runtime.close()


def test_the_service_worker_shows_the_notification_and_opens_the_link(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/push/sw.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    script = response.get_data(as_text=True)
    assert "showNotification(data.title" in script and "data: { url: data.url }" in script
    assert "clients.openWindow(url)" in script
    if shutil.which("node"):  # it must at least parse
        path = Path(__file__).parent.parent / "app" / "web" / "push_sw.js"
        subprocess.run(["node", "--check", str(path)], check=True, capture_output=True, timeout=30)


def test_the_app_proxy_serves_the_worker_only_with_shopifys_signature(client) -> None:  # type: ignore[no-untyped-def]
    ok = client.get(f"/proxy/sw.js?{proxy_query()}")
    assert ok.status_code == 200 and ok.mimetype == "text/javascript"
    assert b"showNotification" in ok.data
    for query in (
        proxy_query(secret="not-our-secret"),
        proxy_query(timestamp=int(time.time()) - 600),  # replayed
        proxy_query().replace("signature=", "signature=0"),
        f"shop={SHOP}&timestamp={int(time.time())}",
    ):
        assert client.get(f"/proxy/sw.js?{query}").status_code == 401



def test_the_app_proxy_serves_the_key_only_with_shopifys_signature(client) -> None:  # type: ignore[no-untyped-def]
    ok = client.get(f"/proxy/push/key?{proxy_query()}")
    assert ok.status_code == 200 and ok.get_json() == {"publicKey": VAPID_PUBLIC}
    for query in (
        proxy_query(secret="not-our-secret"),
        proxy_query(timestamp=int(time.time()) - 600),  # replayed
        f"shop={SHOP}&timestamp={int(time.time())}",
    ):
        response = client.get(f"/proxy/push/key?{query}")
        assert response.status_code == 401 and "publicKey" not in response.get_json()


def test_the_app_proxy_key_is_404_without_web_push_configured(database_url: str, tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(database_url, tmp_path))
    try:
        response = create_app(runtime=runtime).test_client().get(f"/proxy/push/key?{proxy_query()}")
        assert response.status_code == 404 and response.get_json() == {"error": "web push is not configured"}
    finally:
        runtime.close()

# --- subscriptions ------------------------------------------------------------------------------------


def test_subscribe_answers_cors_for_the_shop_origin_only(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    preflight = client.options(
        "/push/subscribe", headers={"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    assert (
        client.options("/push/subscribe", headers={"Origin": "https://evil.example.com"}).status_code == 403
    )

    doc = {"shop": SHOP, "subscription": SUBSCRIPTION}
    assert client.post("/push/subscribe", json=doc).status_code == 403  # no Origin: not a browser
    assert (
        client.post("/push/subscribe", json=doc, headers={"Origin": "https://evil.example.com"}).status_code
        == 403
    )
    assert subscriptions(rt) == []

    response = client.post("/push/subscribe", json=doc, headers={"Origin": SHOP_ORIGIN})
    assert response.status_code == 201 and response.headers["Access-Control-Allow-Origin"] == SHOP_ORIGIN
    assert [endpoint for _, endpoint in subscriptions(rt)] == [SUBSCRIPTION["endpoint"]]


def test_subscribe_accepts_the_stores_configured_origins(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    set_store(rt, allowed_origins=["https://www.example.com"])
    response = client.post(
        "/push/subscribe",
        json={"shop": SHOP, "subscription": SUBSCRIPTION},
        headers={"Origin": "https://www.example.com"},
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "body must be a JSON object"),
        (b"[1]", 400, "body must be a JSON object"),
        (b'{"shop": "' + b"x" * 9000 + b'"}', 413, "a subscription is at most 8192 bytes"),
        (
            b'{"shop": "%s", "subscription": {"endpoint": "https://p.example.com/x"}}' % SHOP.encode(),
            400,
            "subscription: ",
        ),
    ],
)
def test_subscribe_refuses_bad_bodies_precisely(
    rt: Runtime,
    client,
    body: bytes,
    status: int,
    error: str,  # type: ignore[no-untyped-def]
) -> None:
    response = client.post(
        "/push/subscribe", data=body, content_type="application/json", headers={"Origin": SHOP_ORIGIN}
    )
    assert response.status_code == status and response.get_json()["error"].startswith(error)
    assert subscriptions(rt) == []


def test_subscribe_through_the_app_proxy_trusts_only_the_signed_shop(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    body = {"shop": "someone-else.myshopify.com", "subscription": SUBSCRIPTION}
    assert client.post(f"/proxy/push/subscribe?{proxy_query(secret='wrong')}", json=body).status_code == 401
    assert subscriptions(rt) == []

    response = client.post(f"/proxy/push/subscribe?{proxy_query()}", json=body)
    assert response.status_code == 201
    with rt.sessions() as session:
        store_id = session.scalars(select(t.Store.id).where(t.Store.domain == SHOP)).one()
    assert subscriptions(rt) == [(store_id, SUBSCRIPTION["endpoint"])]


def test_subscribe_for_an_uninstalled_shop_is_404(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    with rt.sessions.begin() as session:
        session.scalars(select(t.Store)).one().uninstalled_at = t.utcnow()
    response = client.post(
        "/push/subscribe", json={"shop": SHOP, "subscription": SUBSCRIPTION}, headers={"Origin": SHOP_ORIGIN}
    )
    assert response.status_code == 404 and subscriptions(rt) == []
