"""POST /track through the real Flask app, on SQLite and PostgreSQL: beacons, their effects and refusals."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.config.stores import get_store, set_settings
from tests.conftest import add_store, drain, make_settings
from tests.support import shopify
from tests.support.shopify import SHOP

ORIGIN = f"https://{SHOP}"
OTHER_SHOP = "quiet-harbor.myshopify.com"
TOKEN = "c1-7f3a9b2e4d6c8a0b1e3f5a7c9d2b4e6f"
SID = "k3JxQ9vT2mWb7YzA"


def now_ms() -> int:
    return int(time.time() * 1000)


def beacon(kind: str = "cart", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "shop": SHOP, "sid": SID, "type": kind, "ts": now_ms()}
    if kind == "cart":
        body["cart"] = {
            "token": TOKEN + "?key=5b1f0c2e9a7d",
            "currency": "USD",
            "total": 12345,
            "count": 3,
            "items": [
                {"variant_id": 46310287540521, "product_id": 8812309201, "quantity": 2, "price": 4990,
                 "title": "Waxed Canvas Tote", "sku": "WCT-OLV"},
                {"variant_id": "46310287540999", "quantity": 1, "price": 2365, "title": "Leather Key Fob"},
            ],
        }
    body.update(extra)
    return body


def send(client: Any, body: Any, *, origin: str | None = ORIGIN, content_type: str = "text/plain;charset=UTF-8",
         ip: str = "203.0.113.7") -> Any:
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = {"Content-Type": content_type}
    if origin:
        headers["Origin"] = origin
    return client.post("/track", data=data, headers=headers, environ_base={"REMOTE_ADDR": ip})


def carts(rt: Runtime) -> list[t.Cart]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.Cart).order_by(t.Cart.id)))


def events(rt: Runtime) -> list[tuple[str, str | None]]:
    with rt.sessions() as session:
        return [(e.type, e.detail) for e in session.scalars(select(t.TrackEvent).order_by(t.TrackEvent.id))]


def configure(rt: Runtime, *pairs: str, shop: str = SHOP) -> None:
    with rt.sessions.begin() as session:
        set_settings(session, get_store(session, shop), list(pairs))


def written(rt: Runtime) -> int:
    with rt.sessions() as session:
        return sum(session.scalar(select(func.count()).select_from(m)) or 0 for m in (t.Cart, t.TrackEvent))


# --- happy paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/json"])
def test_cart_beacon_creates_a_tracker_cart(client: Any, runtime: Runtime, store_id: int, content_type: str) -> None:
    before = datetime.now(UTC)
    response = send(client, beacon(device="mobile", tz="Europe/Berlin", page="cart"), content_type=content_type)
    assert response.status_code == 204, response.data
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin"
    [cart] = carts(runtime)
    assert (cart.store_id, cart.cart_token, cart.source, cart.status) == (store_id, TOKEN, "tracker", "active")
    assert (cart.currency, cart.total, cart.subtotal) == ("USD", Decimal("123.45"), Decimal("123.45"))
    assert cart.line_items == [
        {"variant_id": "46310287540521", "product_id": "8812309201", "title": "Waxed Canvas Tote",
         "variant_title": None, "quantity": 2, "unit_price": "49.90", "sku": "WCT-OLV", "image_url": None},
        {"variant_id": "46310287540999", "product_id": None, "title": "Leather Key Fob",
         "variant_title": None, "quantity": 1, "unit_price": "23.65", "sku": None, "image_url": None},
    ]
    assert (cart.device, cart.shopper_timezone, cart.email) == ("mobile", "Europe/Berlin", None)
    assert before - timedelta(seconds=2) <= cart.last_activity_at <= datetime.now(UTC)
    assert cart.abandon_at == cart.last_activity_at + timedelta(hours=1)  # the store's abandon_after
    assert events(runtime) == []  # cart beacons live in the cart row


def test_later_cart_beacon_updates_items_and_pushes_abandonment_back(client: Any, runtime: Runtime, store_id: int) -> None:
    first = beacon()
    first["ts"] -= 60_000
    send(client, first)
    later = beacon()
    later["cart"].update(currency="JPY", total=4500, items=[
        {"variant_id": 1, "quantity": 3, "price": 1500, "title": "Matcha Whisk"}])
    assert send(client, later).status_code == 204
    [cart] = carts(runtime)
    assert (cart.currency, cart.total, [i["unit_price"] for i in cart.line_items]) == ("JPY", Decimal("4500"), ["1500"])
    assert cart.abandon_at == cart.last_activity_at + timedelta(hours=1)
    # An older beacon arriving late changes nothing.
    assert send(client, first).status_code == 204
    assert carts(runtime)[0].total == Decimal("4500")


def test_contact_with_consent_creates_the_cart_and_records_its_source(client: Any, runtime: Runtime, store_id: int) -> None:
    configure(runtime, "country=US")
    body = beacon("contact", cart={"token": TOKEN}, contact={"email": "  Ines.Falk@Example.com ", "phone": "(201) 555-0123"},
                  consent={"analytics": False, "marketing": True, "preferences": True, "sale_of_data": False})
    assert send(client, body).status_code == 204
    [cart] = carts(runtime)
    assert (cart.email, cart.phone, cart.contact_source) == ("ines.falk@example.com", "+12015550123", "tracker:contact")
    assert events(runtime) == [("contact", "contact captured")]


def test_contact_without_consent_is_dropped_unless_the_store_does_not_require_it(
    client: Any, runtime: Runtime, store_id: int
) -> None:
    body = beacon("contact", cart={"token": TOKEN}, contact={"email": "ines.falk@example.com"})
    assert send(client, body).status_code == 204
    assert carts(runtime)[0].email is None
    denied = dict(body, consent={"analytics": False, "marketing": False})
    assert send(client, denied).status_code == 204
    assert carts(runtime)[0].email is None
    configure(runtime, "track_consent_required=false")
    assert send(client, body).status_code == 204
    assert carts(runtime)[0].email == "ines.falk@example.com"
    assert [d for _, d in events(runtime)] == ["contact dropped: no consent"] * 2 + ["contact captured"]


def test_exit_answers_follow_store_settings_and_known_email(client: Any, runtime: Runtime, store_id: int) -> None:
    send(client, beacon())
    exit_beacon = beacon("exit", cart={"token": TOKEN}, page="product")
    response = send(client, exit_beacon)
    assert (response.status_code, response.json) == (200, {"popup": {"kind": "capture"}})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    popup = beacon("popup", popup="email_submitted", cart={"token": TOKEN}, contact={"email": "ines.falk@example.com"},
                   consent={"analytics": True})
    assert send(client, popup).status_code == 204
    assert carts(runtime)[0].contact_source == "tracker:popup"
    assert send(client, exit_beacon).json == {"popup": None}  # email known now
    # An offer with a code (exit_offer_percent, default 10) needs platform access; without it no promise
    # is made that the shopper could not redeem (tests/test_exit_offer.py has the platform side).
    configure(runtime, "exit_offer=10% off if you complete your order today")
    assert send(client, exit_beacon).json == {"popup": None}
    # A session without a cart (no items, no value) is never worth a code: it is asked for an email.
    assert send(client, beacon("exit", sid="AnotherSession000")).json == {"popup": {"kind": "capture"}}
    configure(runtime, "exit_offer_percent=0", "exit_offer=Use WELCOME10 for 10% off today")  # the merchant's own code
    assert send(client, exit_beacon).json == {
        "popup": {"kind": "offer", "code": None, "text": "Use WELCOME10 for 10% off today"}}
    configure(runtime, "exit_popup=false")
    assert send(client, exit_beacon).json == {"popup": None}
    assert events(runtime) == [("exit", "popup:capture"), ("popup", "email_submitted contact captured"),
                               ("exit", "popup:none"), ("exit", "popup:offer (new code)"),
                               ("exit", "popup:capture"), ("exit", "popup:offer"), ("exit", "popup:none")]


def test_checkout_beacons_link_the_checkout_and_mark_nothing_as_bought(client: Any, runtime: Runtime, store_id: int) -> None:
    send(client, beacon())
    started = beacon("checkout_started", cart={"token": TOKEN}, checkout_token="ab12cd34ef56", page="checkout")
    assert send(client, started).status_code == 204
    completed = beacon("checkout_completed", checkout_token="ab12cd34ef56")
    assert send(client, completed).status_code == 204
    assert send(client, beacon("checkout_completed", checkout_token="ffff0000")).status_code == 204
    [cart] = carts(runtime)
    assert (cart.checkout_token, cart.status, cart.completed_at) == ("ab12cd34ef56", "active", None)
    assert events(runtime) == [("checkout_started", "cart found"), ("checkout_completed", "cart found"),
                               ("checkout_completed", "no cart")]


# --- refusals: nothing written -------------------------------------------------------------------


def test_oversized_beacons_get_413(client: Any, runtime: Runtime, store_id: int) -> None:
    big = beacon()
    big["cart"]["items"][0]["sku"] = "x" * 9000
    assert send(client, big).status_code == 413
    # No Content-Length (chunked): at most limit + 1 bytes are read, and that is enough to refuse.
    response = client.post("/track", input_stream=io.BytesIO(json.dumps(big).encode()),
                           headers={"Content-Type": "text/plain", "Origin": ORIGIN, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413
    assert written(runtime) == 0


BAD = [
    (b"{not json", "body is not valid JSON"),
    (b"[1, 2]", "body is not a JSON object"),
    (b"\xff\xfe{}", "body is not UTF-8"),
    (b'{"v": 1, "ts": NaN}', "body is not valid JSON"),
    (b"[" * 4000 + b"]" * 4000, "body is not valid JSON"),
    (b'{"x":' * 500 + b"1" + b"}" * 500, "v: Missing data for required field."),  # JSON, nested deep: still a reason
    (json.dumps(beacon(ts="1764300000000")), "ts:"),
    (json.dumps(beacon(v=2)), "unsupported beacon version"),
    (json.dumps(beacon(cart={"currency": "USD"})), "a cart beacon needs cart.token"),
    (json.dumps(beacon(ts=10**15)), "ts:"),
    (json.dumps(beacon(cart={"token": "?key=abc"})), "cart.token: is not a cart token"),
    (json.dumps(beacon(shop="velvet fern")), "shop: is not a shop domain"),
    (json.dumps(beacon(kind="purchase")), "type:"),
    (json.dumps(beacon(sid="short")), "sid:"),
    (json.dumps(beacon(kind="contact", cart={"token": TOKEN}, contact={"email": "not-an-email"})), "contact.email:"),
    (json.dumps(beacon(kind="contact", cart={"token": TOKEN}, contact={"phone": "+1 555"})), "contact.phone:"),
    (json.dumps(beacon(kind="contact", contact={"email": "a@example.com"})), "needs cart.token or checkout_token"),
    (json.dumps(beacon(kind="exit", consent={"analytics": 1})), "consent.analytics:"),
]


# Ids by position: the bodies carry the time of collection, and xdist's workers must collect the same ids.
@pytest.mark.parametrize(("body", "reason"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_malformed_beacons_get_400_with_a_reason(client: Any, runtime: Runtime, store_id: int, body: Any, reason: str | None) -> None:
    response = send(client, body)
    assert response.status_code == 400, response.data
    assert reason is None or reason in response.json["error"]
    assert written(runtime) == 0


@pytest.mark.parametrize(("where", "value", "reason"), [
    ("title", "<script>alert(1)</script>", "contains script-like content"),
    ("title", "Tote <SCRIPT src=//evil.example.com/x.js>", "contains script-like content"),
    ("title", "Tote <iframe src=//evil.example.com>", "contains script-like content"),
    ("title", "javascript:alert(1)", "contains script-like content"),
    ("title", 'Tote" onmouseover="alert(1)', "contains script-like content"),
    ("title", "x" * 121, "longer than 120 characters"),
    ("title", "Tote\x00", "control characters"),
    ("title", "Tote\x1b[31m", "control characters"),
    ("sku", "<img src=x onerror=alert(1)>", "contains script-like content"),
    ("quantity", "1", "Not a valid integer"),
    ("price", 49.9, "Not a valid integer"),
    ("variant_id", {"id": 1}, "is not an id"),
])
def test_bad_item_fields_get_400(client: Any, runtime: Runtime, store_id: int, where: str, value: Any, reason: str) -> None:
    body = beacon()
    body["cart"]["items"][0][where] = value
    response = send(client, body)
    assert response.status_code == 400
    assert response.json["error"].startswith(f"cart.items.0.{where}: ") and reason in response.json["error"]
    assert written(runtime) == 0


def test_too_many_items_and_wrong_content_type(client: Any, runtime: Runtime, store_id: int) -> None:
    body = beacon()
    body["cart"]["items"] = body["cart"]["items"][:1] * 51
    assert send(client, body).json == {"error": "cart.items: Longer than maximum length 50."}
    assert send(client, beacon(), content_type="application/x-www-form-urlencoded").status_code == 415
    assert written(runtime) == 0


@pytest.mark.parametrize(("title", "sku"), [
    ("Shirt <Limited>", "SH-<L>"),
    ('Tee "Rock & Roll" <3', "TEE&RR"),
    ("Salt & Pepper <2-pack> (50% off!)", None),
    ("<b>Bold</b> Mug", "A<B>C"),
])
def test_ordinary_angle_brackets_and_ampersands_are_accepted_as_plain_text(
    client: Any, runtime: Runtime, store_id: int, title: str, sku: str | None
) -> None:
    body = beacon()
    body["cart"]["items"][0].update(title=title, sku=sku)
    response = send(client, body)
    assert response.status_code == 204, response.data
    item = carts(runtime)[0].line_items[0]
    assert (item["title"], item["sku"]) == (title, sku)  # exactly as typed, never pre-escaped


@pytest.mark.parametrize("tz", ["Mars/Olympus", "Europe/Nowhere", "", "../../etc/passwd", 123, "x" * 200, None])
def test_an_unusable_time_zone_is_dropped_and_the_beacon_kept(client: Any, runtime: Runtime, store_id: int, tz: Any) -> None:
    response = send(client, beacon(tz=tz, device="desktop"))
    assert response.status_code == 204, response.data
    [cart] = carts(runtime)
    assert (cart.shopper_timezone, cart.device, cart.total) == (None, "desktop", Decimal("123.45"))
    # A known zone from an earlier beacon is not wiped by a later unusable one.
    assert send(client, beacon(tz="America/Argentina/Buenos_Aires")).status_code == 204
    assert send(client, beacon(tz=tz)).status_code == 204
    assert carts(runtime)[0].shopper_timezone == "America/Argentina/Buenos_Aires"


def test_markup_in_titles_is_stored_as_plain_text_and_the_dashboard_escapes(
    client: Any, self_hosted_client: Any, runtime: Runtime, store_id: int
) -> None:
    body = beacon()
    title = 'Tee "Rock & Roll" <3 > 2 \'A\''
    body["cart"]["items"][0]["title"] = title
    assert send(client, body).status_code == 204
    assert carts(runtime)[0].line_items[0]["title"] == title  # as typed, never pre-escaped
    app = client.application
    assert app.select_jinja_autoescape("dashboard.html")
    page = self_hosted_client.get("/").get_data(as_text=True)
    assert f"#{carts(runtime)[0].id}" in page  # the dashboard itself, not a login bounce
    assert "<3 > 2" not in page


def test_unknown_or_uninstalled_shop_gets_404(client: Any, runtime: Runtime, store_id: int) -> None:
    assert send(client, beacon(shop=SHOP.upper())).status_code == 204  # domains are case-insensitive
    with runtime.sessions.begin() as session:
        session.execute(t.Cart.__table__.delete())
    assert send(client, beacon(shop="nobody-here.myshopify.com")).status_code == 404
    with runtime.sessions.begin() as session:
        session.get(t.Store, store_id).uninstalled_at = datetime.now(UTC)  # type: ignore[union-attr]
    response = send(client, beacon())
    assert (response.status_code, response.json) == (404, {"error": "unknown shop"})
    assert written(runtime) == 0


def test_origin_must_belong_to_the_shop(client: Any, runtime: Runtime, store_id: int) -> None:
    assert send(client, beacon(), origin="https://evil.example.com").status_code == 403
    assert send(client, beacon(), origin=None).status_code == 403
    assert send(client, beacon(), origin="null").status_code == 403
    assert written(runtime) == 0
    configure(runtime, "allowed_origins=https://shop.velvetfern.example.com,https://www.velvetfern.example.com")
    response = send(client, beacon(), origin="https://WWW.velvetfern.example.com:443")
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://www.velvetfern.example.com"
    assert send(client, beacon(), origin=ORIGIN).status_code == 204  # the myshopify domain stays allowed


def test_cors_preflight(client: Any, runtime: Runtime, store_id: int) -> None:
    configure(runtime, "allowed_origins=https://shop.velvetfern.example.com")
    for origin in (ORIGIN, "https://shop.velvetfern.example.com"):
        response = client.options("/track", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Methods"] == "POST"
        assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
        assert int(response.headers["Access-Control-Max-Age"]) > 0
    refused = client.options("/track", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403 and "Access-Control-Allow-Origin" not in refused.headers


def test_a_beacon_never_touches_another_stores_cart(client: Any, runtime: Runtime, store_id: int) -> None:
    add_store(runtime, OTHER_SHOP)
    send(client, beacon())
    # The other shop's beacon for the same cart token makes its own cart and leaves ours alone.
    other = beacon(shop=OTHER_SHOP)
    other["cart"]["total"] = 1
    assert send(client, other, origin=f"https://{OTHER_SHOP}").status_code == 204
    contact = beacon("contact", shop=OTHER_SHOP, cart={"token": TOKEN}, contact={"email": "x@example.com"},
                     consent={"marketing": True})
    assert send(client, contact, origin=f"https://{OTHER_SHOP}").status_code == 204
    mine, theirs = carts(runtime)
    assert (mine.store_id, mine.total, mine.email) == (store_id, Decimal("123.45"), None)
    assert (theirs.total, theirs.email) == (Decimal("0.01"), "x@example.com")
    # Naming our shop from the other shop's origin is refused.
    assert send(client, beacon(), origin=f"https://{OTHER_SHOP}").status_code == 403


# --- rate limits ---------------------------------------------------------------------------------


def _limited_app(database_url: str, tmp_path: Path, redis_url: str | None = None, **limits: str) -> tuple[Runtime, Any]:
    rt = build_runtime(make_settings(database_url, tmp_path, redis_url=redis_url, **limits))
    add_store(rt)
    return rt, create_app(runtime=rt)


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_per_ip_and_per_shop_limits_answer_429_with_retry_after(
    database_url: str, tmp_path: Path, storage: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if storage == "redis" else None
    rt, app = _limited_app(database_url, tmp_path, redis_url, track_ip_limit="3/minute", track_shop_limit="5/minute")
    try:
        client = app.test_client()
        codes = [send(client, beacon(), ip="198.51.100.1").status_code for _ in range(4)]
        assert codes == [204, 204, 204, 429]
        limited = send(client, beacon(), ip="198.51.100.1")
        assert limited.json == {"error": "too many requests from this address"}
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Other addresses still pass until the shop's own limit (5/minute) is used up.
        codes = [send(client, beacon(), ip=f"198.51.100.{i}").status_code for i in (2, 3, 4)]
        assert codes == [204, 204, 429]
        shop_limited = send(client, beacon(), ip="198.51.100.9")
        assert (shop_limited.status_code, shop_limited.json) == (429, {"error": "too many requests for this shop"})
        assert 1 <= int(shop_limited.headers["Retry-After"]) <= 60
        if storage == "redis":  # the windows are shared: a second web process sees the same counts
            other = create_app(runtime=rt).test_client()
            assert send(other, beacon(), ip="198.51.100.1").status_code == 429
    finally:
        rt.close()


# --- joining platform webhooks -------------------------------------------------------------------


def test_captured_contact_joins_the_checkout_a_later_webhook_describes(client: Any, runtime: Runtime, store_id: int) -> None:
    fixture = shopify.load("checkouts_create__no_contact")
    token = fixture["cart_token"]
    send(client, beacon(cart=dict(beacon()["cart"], token=token + "?key=0a9b8c")))
    contact = beacon("contact", cart={"token": token}, contact={"email": "ines.falk@example.com"},
                     consent={"analytics": True, "marketing": True})
    assert send(client, contact).status_code == 204
    assert shopify.post(client, "checkouts_create__no_contact").status_code == 200
    drain(runtime)
    [cart] = carts(runtime)  # merged, not a duplicate
    assert (cart.cart_token, cart.checkout_token) == (token, fixture["token"])
    assert (cart.email, cart.contact_source, cart.source) == ("ines.falk@example.com", "tracker:contact", "tracker")
    assert cart.total == Decimal(fixture["total_price"])  # the platform's checkout owns items and totals
    assert cart.platform_updated_at == datetime.fromisoformat(fixture["updated_at"])


def test_stale_beacons_never_roll_back_webhook_state(client: Any, runtime: Runtime, store_id: int) -> None:
    fixture = shopify.load("checkouts_create")
    shopify.post(client, "checkouts_create")
    drain(runtime)
    token, updated = fixture["cart_token"], datetime.fromisoformat(fixture["updated_at"])
    older = beacon(cart=dict(beacon()["cart"], token=token), ts=int((updated - timedelta(minutes=5)).timestamp() * 1000))
    assert send(client, older).status_code == 204
    contact = beacon("contact", cart={"token": token}, contact={"email": "someone.else@example.com"}, consent={"marketing": True})
    assert send(client, contact).status_code == 204
    [cart] = carts(runtime)
    assert (cart.total, cart.email, cart.tracked_at) == (Decimal("123.80"), "maren.holloway@example.com", None)
    # A newer beacon does update the items, but a bought cart is never reopened or changed.
    assert send(client, beacon(cart=dict(beacon()["cart"], token=token))).status_code == 204
    assert carts(runtime)[0].total == Decimal("123.45")
    with runtime.sessions.begin() as session:
        session.get(t.Cart, cart.id).status = "completed"  # type: ignore[union-attr]
    later = beacon(cart=dict(beacon()["cart"], token=token, total=999))
    assert send(client, later).status_code == 204
    final = carts(runtime)[0]
    assert (final.status, final.total) == ("completed", Decimal("123.45"))


def test_checkout_contact_by_checkout_token_alone_is_the_cart_the_webhook_updates(
    client: Any, runtime: Runtime, store_id: int
) -> None:
    fixture = shopify.load("checkouts_create")
    body = beacon("checkout_contact", checkout_token=fixture["token"], contact={"phone": "+49 30 901820"},
                  consent={"analytics": True})
    assert send(client, body).status_code == 204
    shopify.post(client, "checkouts_create")
    drain(runtime)
    [cart] = carts(runtime)
    assert (cart.checkout_token, cart.cart_token) == (fixture["token"], fixture["cart_token"])
    assert (cart.email, cart.phone, cart.contact_source) == ("maren.holloway@example.com", "+4930901820",
                                                            "tracker:checkout_contact")


def test_a_cart_whose_order_came_first_is_never_left_open(client: Any, runtime: Runtime, store_id: int) -> None:
    order = shopify.load("orders_create__cart_token_only")
    shopify.post(client, "orders_create__cart_token_only")
    drain(runtime)
    assert send(client, beacon(cart=dict(beacon()["cart"], token=order["cart_token"]))).status_code == 204
    [cart] = carts(runtime)
    assert cart.status == "completed"


def test_a_returning_shopper_reopens_an_abandoned_cart(client: Any, runtime: Runtime, store_id: int) -> None:
    first = beacon()
    first["ts"] -= 7_200_000
    send(client, first)
    with runtime.sessions.begin() as session:
        cart = session.scalars(select(t.Cart)).one()
        cart.status, cart.abandoned_at = "abandoned", datetime.now(UTC) - timedelta(minutes=30)
        session.add(t.RecoveryMessage(store_id=store_id, cart_id=cart.id, step=1, channel="email", template="reminder",
                                      due_at=datetime.now(UTC) + timedelta(hours=1)))
    same = dict(first, ts=now_ms())
    send(client, same)  # a re-sent, unchanged cart is not a return
    assert carts(runtime)[0].status == "abandoned"
    changed = beacon(cart=dict(beacon()["cart"], total=99))
    send(client, changed)
    with runtime.sessions() as session:
        message = session.scalars(select(t.RecoveryMessage)).one()
    assert (carts(runtime)[0].status, message.status) == ("active", "cancelled")


def test_an_unreachable_redis_falls_back_to_local_limits(database_url: str, tmp_path: Path) -> None:
    rt, app = _limited_app(database_url, tmp_path, "redis://127.0.0.1:1/0", track_ip_limit="2/minute")
    try:
        client = app.test_client()
        started = time.monotonic()
        assert [send(client, beacon()).status_code for _ in range(3)] == [204, 204, 429]
        assert time.monotonic() - started < 5
    finally:
        rt.close()


def test_web_pixel_checkout_beacons_are_accepted(client: Any, runtime: Runtime, store_id: int) -> None:
    # Shaped like connectors/shopify/web_pixel: a checkout summary without cart token or some variant ids.
    body = beacon("checkout_contact", page="checkout", checkout_token="5f1c9e0a7b3d",
                  cart={"currency": "EUR", "total": 5240, "count": 1,
                        "items": [{"quantity": 1, "price": 5240, "title": ""}]},
                  consent={"analytics": True, "marketing": True, "preferences": False, "sale_of_data": False},
                  contact={"email": "lene.voskamp@example.com"})
    assert send(client, body).status_code == 204
    [cart] = carts(runtime)
    assert (cart.checkout_token, cart.cart_token, cart.currency, cart.email) == (
        "5f1c9e0a7b3d", None, "EUR", "lene.voskamp@example.com")
    assert events(runtime) == [("checkout_contact", "contact captured")]
