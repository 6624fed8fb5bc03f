"""The storefront tracker in real headless Chromium against a local Shopify-like storefront."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.browser.storefront import PRODUCTS, SHOP, Collector, Served, Storefront, wait_for

CONSENT = """<script>window.Shopify = {{customerPrivacy: {{
  analyticsProcessingAllowed: () => {a}, marketingAllowed: () => {m},
  preferencesProcessingAllowed: () => {a}, saleOfDataAllowed: () => {m}, shouldShowBanner: () => {b}}}}};</script>"""
CONSENT_GIVEN = CONSENT.format(a="true", m="true", b="false")
CONSENT_REFUSED = CONSENT.format(a="false", m="false", b="true")
# Layout shifts are summed so the popup can be shown to move nothing on the page.
CLS_PROBE = """window.__cls = 0; new PerformanceObserver(l => l.getEntries().forEach(e => {
  if (!e.hadRecentInput) window.__cls += e.value })).observe({type: 'layout-shift', buffered: true});"""


class Visit:
    """One page in a fresh browser context, recording console errors and every request made."""

    def __init__(self, browser: Any, front: Storefront, served: Served, collector: Collector, *,
                 device: str | None = None, **context_args: Any) -> None:
        options = dict(browser.devices[device]) if device else {"viewport": {"width": 1280, "height": 800}}
        options.pop("default_browser_type", None)
        self.context = browser.new_context(**options, **context_args)
        self.page = self.context.new_page()
        self.collector, self.served = collector, served
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.add_init_script(CLS_PROBE)

    def open(self) -> Visit:
        self.page.goto(self.served.url + "/products/linen-shirt")
        self.page.wait_for_function("window.CartResQ === 1")
        return self

    def wait(self, ms: int) -> None:
        self.page.wait_for_timeout(ms)  # keeps Playwright's event loop turning (console, requests)

    def settle(self, timeout_ms: int = 5000) -> None:
        """Waits until the page has not scrolled for 300 ms: a fling lasts longer on a loaded machine."""
        self.page.wait_for_function("""() => {
          const y = window.scrollY, now = performance.now();
          if (window.__settleY !== y) { window.__settleY = y; window.__settleAt = now; }
          return now - window.__settleAt >= 300;
        }""", polling=50, timeout=timeout_ms)

    def mouse_out_top(self) -> None:
        self.page.mouse.move(640, 300)
        self.page.mouse.move(640, 5, steps=4)
        self.page.mouse.move(640, -20)

    def swipe_down(self, steps: int, step_px: int, pause: float) -> None:
        """A finger dragged down the touch screen, which scrolls the page up (real touch events)."""
        cdp = self.context.new_cdp_session(self.page)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": 200, "y": 120}]})
        for i in range(1, steps + 1):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                                  "touchPoints": [{"x": 200, "y": 120 + step_px * i}]})
            time.sleep(pause)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        cdp.detach()

    def finish(self) -> None:
        self.wait(100)
        assert self.errors == []
        assert [r.method for r in self.collector.requests if r.method != "POST"] == [], "a CORS preflight was sent"
        self.context.close()


@pytest.fixture
def visit(browser: Any, shop: tuple[Storefront, Served]):  # type: ignore[no-untyped-def]
    front, served = shop
    opened: list[Visit] = []

    def make(**kwargs: Any) -> Visit:
        v = Visit(browser, front, served, front.collector, **kwargs)
        opened.append(v)
        return v

    yield make
    for v in opened:
        if v.context.pages:  # a test that failed before finish()
            v.context.close()


def cart_beacons(c: Collector) -> list[dict[str, Any]]:
    return c.beacons("cart")


def test_fetch_and_xhr_adds_send_one_debounced_beacon_with_the_cart(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    v = visit().open()  # default settings: the 2 s debounce
    assert [r for r in v.requests if "cartresq-popup" in r] == []  # the popup loads only when it shows
    v.page.click("#add-fetch")
    v.wait(400)
    v.page.click("#add-xhr")
    v.wait(1400)
    assert cart_beacons(front.collector) == [], "sent before the 2 s debounce ran out"
    beacons = wait_for(lambda: cart_beacons(front.collector), timeout=4)
    v.wait(1500)
    assert len(cart_beacons(front.collector)) == 1
    beacon = beacons[0]
    record = next(r for r in front.collector.requests if r.body is beacon)
    assert record.method == "POST" and record.content_type.startswith("text/plain")  # sendBeacon, no preflight
    assert record.raw_size <= 8192
    assert beacon["v"] == 1 and beacon["shop"] == SHOP and beacon["type"] == "cart"
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", beacon["sid"])
    assert beacon["page"] == "product" and beacon["device"] == "desktop" and beacon["tz"]
    assert isinstance(beacon["tos"], int) and beacon["tos"] >= 0 and beacon["ts"] > 1.7e12
    assert "contact" not in beacon
    cart = beacon["cart"]
    assert cart["token"] == front.cart.token and "?key=" in cart["token"]
    assert (cart["currency"], cart["count"], cart["total"]) == ("EUR", 3, 2500 + 2 * 1200)
    assert cart["items"] == [
        {"variant_id": 40001, "product_id": 70001, "quantity": 1, "price": 2500, "title": "Linen Shirt - M",
         "sku": "LS-M"},
        {"variant_id": 40002, "product_id": 70002, "quantity": 2, "price": 1200, "title": "Wool Socks"},
    ]
    v.finish()


def test_every_ajax_cart_write_is_seen_with_or_without_js_suffix(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.embed_attrs = {"data-debounce": "300"}
    v = visit().open()
    c = front.collector
    # A form post to /cart/add (no .js) through fetch with a Request object; Shopify answers with a redirect.
    v.page.evaluate("""() => { const f = new FormData(); f.append('id', '40002'); f.append('quantity', '1');
        return fetch(new Request('/cart/add', {method: 'POST', body: f})) }""")
    wait_for(lambda: [b for b in cart_beacons(c) if b["cart"]["count"] == 1], timeout=4)
    v.page.evaluate("""() => new Promise(done => { const x = new XMLHttpRequest();
        x.open('POST', '/cart/change.js'); x.setRequestHeader('Content-Type', 'application/json');
        x.onload = done; x.send(JSON.stringify({id: 40002, quantity: 3})) })""")
    assert wait_for(lambda: [b for b in cart_beacons(c) if b["cart"]["count"] == 3], timeout=4)
    v.page.evaluate("""() => fetch('/cart/update.js', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({updates: {40001: 2}})})""")
    assert wait_for(lambda: [b for b in cart_beacons(c) if b["cart"]["count"] == 5], timeout=4)
    v.page.evaluate("() => fetch('/cart/clear.js', {method: 'POST'})")
    assert wait_for(lambda: [b for b in cart_beacons(c) if b["cart"]["count"] == 0], timeout=4)
    sent = len(cart_beacons(c))
    # Reads and unrelated requests are not cart changes.
    v.page.evaluate("() => Promise.all([fetch('/cart.js'), fetch('/cart')])")
    v.wait(800)
    assert len(cart_beacons(c)) == sent
    v.finish()


def test_typed_contact_is_captured_when_consent_allows(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.head = CONSENT_GIVEN
    front.cart.lines[40001] = 1
    v = visit().open()
    v.page.type("#email", "jane@exa", delay=20)
    v.wait(1200)
    assert front.collector.beacons("contact") == [], "an incomplete address was sent"
    v.page.type("#email", "mple.com", delay=20)
    v.page.fill("#note", "leave at the door")
    contact = wait_for(lambda: front.collector.beacons("contact"), timeout=4)
    assert contact[0]["contact"] == {"email": "jane@example.com"}
    assert contact[0]["consent"] == {"analytics": True, "marketing": True}  # the server joins contacts on it
    assert contact[0]["cart"]["token"] == front.cart.token
    v.page.type("#billing_phone", "+49 (30) 1234-5678", delay=10)
    phone = wait_for(lambda: [b for b in front.collector.beacons("contact") if "phone" in b["contact"]], timeout=4)
    assert phone[0]["contact"] == {"phone": "+4930123456" + "78"}
    assert len(front.collector.beacons("contact")) == 2  # one per distinct value, the note never
    v.finish()


@pytest.mark.parametrize(
    ("head", "settings"),
    [
        (CONSENT_REFUSED, {}),  # region needs consent, none given
        ("<script>window.Shopify = {};</script>", {}),  # Shopify page whose consent API is missing
        ("", {"capture_contact": False}),  # the store turned capture off
    ],
    ids=["consent-refused", "consent-api-missing", "capture-off"],
)
def test_nothing_personal_without_consent_or_setting(visit, shop, head: str, settings: dict) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.head, front.embed_settings = head, settings
    front.embed_attrs = {"data-debounce": "200"}
    v = visit().open()
    v.page.type("#email", "jane@example.com", delay=10)
    v.page.type("#billing_phone", "+4930123456", delay=10)
    v.page.click("#add-fetch")
    wait_for(lambda: cart_beacons(front.collector), timeout=4)
    v.wait(1200)
    assert cart_beacons(front.collector), "anonymous cart beacons still flow"
    assert all("contact" not in b for b in front.collector.beacons())
    v.finish()


@pytest.mark.parametrize("honor", [True, False])
def test_global_privacy_control_is_honoured_when_the_store_enables_it(visit, shop, honor: bool) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.embed_settings = {"honor_dnt": honor}
    front.embed_attrs = {"data-debounce": "200"}
    v = visit()
    v.page.add_init_script("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})")
    v.page.goto(v.served.url + "/products/linen-shirt")
    v.page.click("#add-fetch")
    v.wait(1500)
    assert bool(front.collector.beacons()) is not honor
    v.finish()


def test_desktop_exit_intent_shows_the_capture_popup_once(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.embed_attrs = {"data-exit-delay": "1500", "data-debounce": "200"}
    v = visit().open()
    v.page.click("#add-fetch")
    v.mouse_out_top()  # too early in the visit
    v.wait(300)
    assert front.collector.beacons("exit") == []
    v.wait(1300)
    v.mouse_out_top()
    dialog = v.page.locator("[role=dialog]")
    dialog.wait_for(state="visible", timeout=4000)
    exit_record = next(r for r in front.collector.requests if r.body and r.body["type"] == "exit")
    assert exit_record.content_type.startswith("text/plain")  # fetch with a string body: no preflight
    assert exit_record.body["cart"]["count"] == 1
    assert any("cartresq-popup.js" in r for r in v.requests)
    assert dialog.get_attribute("aria-modal") == "true"
    title_id = dialog.get_attribute("aria-labelledby")
    assert v.page.locator(f"#{title_id}").inner_text() == "Save your cart?"
    overlay = v.page.locator("#cartresq-popup")
    assert overlay.evaluate("e => getComputedStyle(e).position") == "fixed"
    email = v.page.locator("#cq-email")
    assert email.get_attribute("type") == "email"
    assert v.page.evaluate("document.activeElement.id") == "cq-email"
    # Focus is trapped: Tab from the last control wraps to the first, Shift+Tab back again.
    for _ in range(4):
        v.page.keyboard.press("Tab")
        assert v.page.evaluate("document.getElementById('cartresq-popup').contains(document.activeElement)")
    assert v.page.evaluate("window.__cls") == 0
    assert wait_for(lambda: [b for b in front.collector.beacons("popup") if b["popup"] == "shown"])
    v.page.keyboard.press("Escape")
    assert dialog.count() == 0
    assert wait_for(lambda: [b for b in front.collector.beacons("popup") if b["popup"] == "closed"])
    # At most once per session: not again on this page, nor on the next one.
    v.mouse_out_top()
    v.wait(500)
    v.page.reload()
    v.page.wait_for_function("window.CartResQ === 1")
    v.wait(1600)
    v.mouse_out_top()
    v.wait(600)
    assert v.page.locator("[role=dialog]").count() == 0
    assert len(front.collector.beacons("exit")) == 1
    v.finish()


def test_popup_email_is_submitted_with_enter(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.embed_attrs = {"data-exit-delay": "0"}
    front.cart.lines[40002] = 1
    v = visit().open()
    v.mouse_out_top()
    v.page.locator("#cq-email").wait_for(state="visible", timeout=4000)
    v.page.keyboard.type("not-an-email")
    v.page.keyboard.press("Enter")
    assert v.page.locator("#cq-email").get_attribute("aria-invalid") == "true"
    v.page.fill("#cq-email", "sam@example.com")
    v.page.keyboard.press("Enter")
    submitted = wait_for(lambda: [b for b in front.collector.beacons("popup") if b["popup"] == "email_submitted"])
    assert submitted[0]["contact"] == {"email": "sam@example.com"}
    assert submitted[0]["cart"]["token"] == front.cart.token
    assert v.page.locator("#cq-text").inner_text().startswith("Thanks")
    assert len(front.collector.beacons("contact")) == 0  # the popup's own field is not "typed contact"
    v.finish()


def test_mobile_fast_scroll_up_shows_the_offer_once(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.collector.exit_popup = {"kind": "offer", "code": "SAVE10-XYZ", "text": "10% off if you order today"}
    front.embed_attrs = {"data-exit-delay": "500"}
    front.cart.lines[40001] = 2
    v = visit(device="Pixel 5")
    v.open()
    v.page.evaluate("window.scrollTo(0, 2500)")
    v.wait(700)
    v.swipe_down(steps=10, step_px=15, pause=0.05)  # a slow, short scroll up is just reading
    v.wait(500)
    assert front.collector.beacons("exit") == []
    v.swipe_down(steps=10, step_px=60, pause=0.016)  # a fast fling toward the top
    dialog = v.page.locator("[role=dialog]")
    dialog.wait_for(state="visible", timeout=4000)
    assert v.page.locator(".cq-c").inner_text() == "SAVE10-XYZ"
    assert v.page.locator("#cq-text").inner_text() == "10% off if you order today"
    assert v.page.locator("a.cq-b").get_attribute("href") == "/discount/SAVE10-XYZ?redirect=%2Fcheckout"
    exit_beacon = front.collector.beacons("exit")[0]
    assert exit_beacon["device"] == "mobile" and exit_beacon["cart"]["count"] == 2
    assert v.page.evaluate("window.__cls") == 0
    v.settle()  # a tap during the fling only stops the fling, as on a phone
    v.page.locator(".cq-x").tap()
    dialog.wait_for(state="detached", timeout=2000)
    v.page.evaluate("window.scrollTo(0, 2500)")
    v.wait(400)
    v.swipe_down(steps=10, step_px=60, pause=0.016)
    v.wait(600)
    assert dialog.count() == 0 and len(front.collector.beacons("exit")) == 1
    v.finish()


def test_no_exit_popup_with_an_empty_cart(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.embed_attrs = {"data-exit-delay": "0"}
    v = visit().open()
    v.mouse_out_top()
    v.wait(800)
    assert front.collector.beacons() == []
    assert v.page.locator("[role=dialog]").count() == 0
    assert PRODUCTS  # the catalogue is there; the cart simply is empty
    v.finish()


def test_a_product_page_sends_one_view_beacon_with_the_product_id_only(visit, shop) -> None:  # type: ignore[no-untyped-def]
    front, _ = shop
    front.product_id = str(PRODUCTS[40001]["product_id"])
    v = visit().open()
    [view] = wait_for(lambda: front.collector.beacons("view"), timeout=4)
    v.wait(500)
    assert len(front.collector.beacons("view")) == 1 and front.collector.beacons() == [view]
    assert view["product_id"] == "70001" and view["page"] == "product"
    assert "cart" not in view and "Linen" not in json.dumps(view)  # the id only: no title, no cart
    v.finish()


def test_the_visitor_id_outlives_the_session_id(visit, shop) -> None:  # type: ignore[no-untyped-def]
    """Browse abandonment across sessions: a later session (the session id rotated after 30 min idle) keeps
    the browser's visitor id, so the server can count its views for a shopper an earlier session named."""
    front, _ = shop
    front.product_id = str(PRODUCTS[40001]["product_id"])
    v = visit().open()
    [first] = wait_for(lambda: front.collector.beacons("view"), timeout=4)
    assert re.fullmatch(r"[a-z0-9]{24}", first["vid"]) and re.fullmatch(r"\w{24}", first["sid"])
    # 31 minutes idle: the stored session's last activity moved back
    v.page.evaluate("(() => { const s = JSON.parse(localStorage.cartresq); s.l -= 31 * 60e3;"
                    " localStorage.cartresq = JSON.stringify(s) })()")
    v.open()
    second = wait_for(lambda: front.collector.beacons("view")[1:], timeout=4)[0]
    assert second["sid"] != first["sid"] and second["vid"] == first["vid"]
    v.finish()
