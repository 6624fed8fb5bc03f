"""The popup's web-push offer in real headless Chromium, through the test storefront's app proxy to the
real app.

Headless Chromium reaches no push service (FCM), so `PushManager.prototype.subscribe` alone is replaced by
one returning a PushSubscription-like object with real keys; the permission, the service worker
registration, the key, the proxy signature and the stored row are all real.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from tests.browser.storefront import SHOP, Served, Storefront
from tests.browser.test_tracker_browser import Visit
from tests.conftest import add_store, make_settings
from tests.support.push_service import VAPID_PRIVATE, VAPID_PUBLIC
from tests.support.shopify import SECRET


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# What a browser's PushSubscription.toJSON() gives: its own P-256 public key and a 16-byte auth secret.
BROWSER_KEY = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
SUBSCRIPTION = {  # on a push service the app accepts (recovery/sending/netguard.PUSH_HOSTS); nothing is sent to it here
    "endpoint": f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(24)}",
    "expirationTime": None,
    "keys": {"p256dh": b64url(BROWSER_KEY), "auth": b64url(secrets.token_bytes(16))},
}
# The push service boundary only: the options the popup passes are recorded for the test.
FAKE_SUBSCRIBE = """(() => {
  const json = %s;
  PushManager.prototype.subscribe = function (options) {
    (window.__subscribed = window.__subscribed || []).push({userVisibleOnly: options.userVisibleOnly,
      key: btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)))});
    return Promise.resolve({endpoint: json.endpoint, expirationTime: null, options,
      getKey: () => null, unsubscribe: () => Promise.resolve(true), toJSON: () => json});
  };
})();""" % json.dumps(SUBSCRIPTION)
PUSH_BUTTON = "Remind me in this browser"
POPUPS = [{"kind": "capture"}, {"kind": "offer", "code": "SAVE10-XYZ", "text": "10% off"}]


@pytest.fixture
def app_rt(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = make_settings(
        sqlite_url, tmp_path, vapid_private_key=VAPID_PRIVATE, vapid_subject="ops@example.com"
    )
    runtime = build_runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def front(
    browser: Any, shop: tuple[Storefront, Served], app_rt: Runtime
) -> tuple[Storefront, Served, int, int]:
    """The storefront with the real app behind its app proxy; the cart row the tracker's beacon would make."""
    storefront, served = shop
    store_id = add_store(app_rt, domain=SHOP)
    with app_rt.sessions.begin() as session:
        now = t.utcnow()
        cart = t.Cart(store_id=store_id, cart_token=storefront.cart.token.split("?", 1)[0], currency="EUR",
                      subtotal=Decimal("25.00"), total=Decimal("25.00"), source="tracker",
                      platform_updated_at=now, last_activity_at=now)
        session.add(cart)
        session.flush()
        cart_id = cart.id
    storefront.app_proxy, storefront.proxy_secret = create_app(runtime=app_rt), SECRET
    storefront.embed_attrs = {"data-exit-delay": "0"}
    storefront.cart.lines[40001] = 1
    return storefront, served, store_id, cart_id


def open_popup(browser: Any, storefront: Storefront, served: Served, **context_args: Any) -> Visit:
    v = Visit(browser, storefront, served, storefront.collector, **context_args)
    v.page.add_init_script(FAKE_SUBSCRIBE)
    v.open()
    v.mouse_out_top()
    v.page.locator("[role=dialog]").wait_for(state="visible", timeout=4000)
    return v


def stored(rt: Runtime) -> list[dict[str, Any]]:
    with rt.sessions() as session:
        return [
            {"store_id": s.store_id, "cart_id": s.cart_id, "sid": s.sid, "endpoint": s.endpoint, "keys": s.keys}
            for s in session.scalars(select(t.PushSubscription))
        ]


@pytest.mark.parametrize("popup", POPUPS, ids=["capture", "offer"])
def test_no_push_offer_without_a_push_base(browser, front, popup: dict) -> None:  # type: ignore[no-untyped-def]
    storefront, served, _, _ = front
    storefront.collector.exit_popup = popup
    v = open_popup(browser, storefront, served, permissions=["notifications"])
    assert v.page.get_attribute("script[data-push-base]", "data-push-base") == ""  # the block's default
    assert v.page.get_by_role("button", name=PUSH_BUTTON).count() == 0
    v.finish()


@pytest.mark.parametrize("popup", POPUPS, ids=["capture", "offer"])
def test_the_push_button_registers_the_worker_and_stores_the_subscription(  # type: ignore[no-untyped-def]
    browser, front, app_rt: Runtime, popup: dict
) -> None:
    storefront, served, store_id, cart_id = front
    storefront.collector.exit_popup = popup
    storefront.embed_settings = {"web_push": True}
    v = open_popup(browser, storefront, served, permissions=["notifications"])
    button = v.page.get_by_role("button", name=PUSH_BUTTON)
    assert button.count() == 1
    button.focus()  # the keyboard path: the result must not strand focus on a removed button
    v.page.keyboard.press("Enter")
    status = v.page.locator("#cartresq-popup [role=status]")
    status.filter(has_text="remind you").wait_for(timeout=4000)
    assert status.inner_text() == "Done. We'll remind you in this browser."
    assert button.count() == 0
    assert v.page.evaluate("document.getElementById('cartresq-popup').contains(document.activeElement)")
    assert v.page.evaluate("window.__cls") == 0

    origin = served.url
    registration = v.page.evaluate("""async () => {
        const reg = await navigator.serviceWorker.getRegistration('/apps/cartresq/');
        return reg && {scope: reg.scope, script: (reg.active || reg.waiting || reg.installing).scriptURL};
    }""")
    assert registration == {"scope": f"{origin}/apps/cartresq/", "script": f"{origin}/apps/cartresq/sw.js"}
    server_key = base64.b64encode(base64.urlsafe_b64decode(VAPID_PUBLIC + "==")).decode()
    assert v.page.evaluate("window.__subscribed") == [{"userVisibleOnly": True, "key": server_key}]
    # Every push request went through the app proxy, signed, and the app accepted it.
    assert ("GET", "sw.js", 200) in storefront.proxied
    assert [p for p in storefront.proxied if p[1] != "sw.js"] == [("GET", "push/key", 200),
                                                                  ("POST", "push/subscribe", 201)]
    sid = storefront.collector.beacons("exit")[0]["sid"]
    assert stored(app_rt) == [{"store_id": store_id, "cart_id": cart_id, "sid": sid,
                               "endpoint": SUBSCRIPTION["endpoint"], "keys": SUBSCRIPTION["keys"]}]
    v.finish()


def test_a_refused_permission_ends_in_a_neutral_line_and_no_request(  # type: ignore[no-untyped-def]
    browser, front, app_rt: Runtime
) -> None:
    storefront, served, _, _ = front
    storefront.embed_settings = {"web_push": True}
    # Notifications not granted: headless Chromium answers the prompt with "denied", as a shopper's "Block".
    v = open_popup(browser, storefront, served)
    v.page.get_by_role("button", name=PUSH_BUTTON).click()
    status = v.page.locator("#cartresq-popup [role=status]")
    status.filter(has_text="not available").wait_for(timeout=4000)
    assert status.inner_text() == "Browser reminders are not available right now."
    v.wait(300)
    assert v.page.evaluate("Notification.permission") == "denied"
    assert v.page.evaluate("navigator.serviceWorker.getRegistration('/apps/cartresq/')") is None
    assert v.page.evaluate("window.__subscribed") is None
    assert storefront.proxied == [] and stored(app_rt) == []
    assert not [r for r in v.requests if "/apps/cartresq/" in r]
    assert v.page.evaluate("window.__cls") == 0
    v.finish()  # no console errors, no preflight
