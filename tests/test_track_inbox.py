"""POST /track with the beacon inbox (Settings.track_inbox, PostgreSQL): the edge stores, the track relay
applies; the result, the refusals and the limits are the synchronous path's."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from app import create_app
from app.dispatcher import track_relay_forever
from app.runtime import Runtime, build_runtime
from recovery.config.stores import get_store, set_settings
from recovery.intake import track_inbox
from recovery.storage import tables as t
from tests.conftest import add_store, make_settings
from tests.support.shopify import SHOP
from tests.test_track import OTHER_SHOP, TOKEN, beacon, send

OTHER_ORIGIN = f"https://{OTHER_SHOP}"
BOUGHT = "c9-2b7e4d1a9f3c"


def _app(url: str, tmp_path: Path, redis_url: str | None = None, *, inbox: bool = True, **extra: Any) -> tuple[Runtime, Any]:
    rt = build_runtime(make_settings(url, tmp_path, redis_url=redis_url, track_inbox=inbox, **extra))
    return rt, create_app(runtime=rt)


@pytest.fixture
def inbox_app(pg_url: str, tmp_path: Path) -> Any:
    rt, app = _app(pg_url, tmp_path)
    add_store(rt)
    yield rt, app.test_client()
    rt.close()


def inbox_rows(rt: Runtime) -> list[t.TrackInbox]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.TrackInbox).order_by(t.TrackInbox.id)))


def apply_all(rt: Runtime) -> tuple[int, int]:
    with rt.sessions.begin() as session:
        return track_inbox.apply_pending(session, rt.timing)


def snapshot(rt: Runtime, shop: str) -> dict[str, Any]:
    """What the beacons left for `shop`, without ids, the store and the row's own clock times."""
    with rt.sessions() as session:
        store = get_store(session, shop)
        carts = [
            {k: v for k, v in vars(c).items() if not k.startswith("_") and k not in ("id", "store_id", "created_at", "updated_at")}
            for c in session.scalars(select(t.Cart).where(t.Cart.store_id == store.id).order_by(t.Cart.cart_token))
        ]
        events = [(e.type, e.detail, e.sid, e.at, e.cart_id is not None)
                  for e in session.scalars(select(t.TrackEvent).where(t.TrackEvent.store_id == store.id).order_by(t.TrackEvent.id))]
        views = [(v.sid, v.product_id, v.views, v.last_at, v.due_at, v.cart_id is not None)
                 for v in session.scalars(select(t.ProductView).where(t.ProductView.store_id == store.id).order_by(t.ProductView.id))]
    return {"carts": carts, "events": events, "views": views}


def test_applied_inbox_equals_the_synchronous_path(pg_url: str, tmp_path: Path) -> None:
    """The same beacons, one shop through the inbox, another through the synchronous path: same rows."""
    sync_rt, sync_app = _app(pg_url, tmp_path / "sync", inbox=False)
    rt, app = _app(pg_url, tmp_path / "inbox")
    try:
        add_store(rt, SHOP)
        add_store(rt, OTHER_SHOP)
        for shop in (SHOP, OTHER_SHOP):
            with rt.sessions.begin() as session:
                set_settings(session, get_store(session, shop), ["browse_abandonment=on"])
        ts = int(time.time() * 1000) - 120_000
        placed = datetime.now(UTC) - timedelta(minutes=5)
        with rt.sessions.begin() as session:  # an order processed before its cart's first beacon
            for shop in (SHOP, OTHER_SHOP):
                session.add(t.Order(store_id=get_store(session, shop).id, platform_order_id="5590", cart_token=BOUGHT,
                                    currency="USD", total=Decimal("20.00"), placed_at=placed))
        bought = beacon(ts=ts + 1500)
        bought["cart"] = {**bought["cart"], "token": BOUGHT}
        sequence = [
            beacon("view", product_id="8812309201", ts=ts),
            beacon(ts=ts + 1000),
            bought,
            beacon("popup", popup="shown", ts=ts + 2000),
            beacon("view", product_id="8812309201", ts=ts + 3000),
            beacon(ts=ts + 500),  # older than the last cart beacon: changes nothing
            beacon("checkout_started", checkout_token="ck-5e8d2a", ts=ts + 4000),
            beacon("popup", popup="closed", ts=ts + 5000),
        ]
        inbox_client, sync_client = app.test_client(), sync_app.test_client()
        for body in sequence:
            assert send(sync_client, {**body, "shop": OTHER_SHOP}, origin=OTHER_ORIGIN).status_code == 204
            assert send(inbox_client, body).status_code == 204
        assert len(inbox_rows(rt)) == len(sequence)  # nothing applied at the edge
        assert snapshot(rt, SHOP) == {"carts": [], "events": [], "views": []}
        assert apply_all(rt) == (len(sequence), 0)
        assert inbox_rows(rt) == []
        applied, synchronous = snapshot(rt, SHOP), snapshot(rt, OTHER_SHOP)
        assert [c["status"] for c in applied["carts"]] == ["active", "completed"]
        assert applied["events"] and applied["views"]
        assert applied == synchronous
        assert apply_all(rt) == (0, 0)  # idempotent: nothing is applied twice
    finally:
        rt.close()
        sync_rt.close()


def test_a_poison_row_is_dead_lettered_and_the_others_applied(inbox_app: Any) -> None:
    rt, client = inbox_app
    assert send(client, beacon()).status_code == 204
    broken = beacon(cart={"token": "c2-broken", "items": [{"variant_id": 1, "quantity": 1}]})  # no price
    with rt.sessions.begin() as session:  # a row the edge could never have stored, as if written by a bug
        store = get_store(session, SHOP)
        session.add(t.TrackInbox(store_id=store.id, received_at=datetime.now(UTC), cart_token="c2-broken", beacon=broken))
    assert send(client, beacon("view", product_id="42")).status_code == 204
    assert apply_all(rt) == (2, 1)
    [dead] = inbox_rows(rt)
    assert dead.failed_at is not None and dead.error.startswith("KeyError")
    with rt.sessions() as session:
        tokens = list(session.scalars(select(t.Cart.cart_token)))
    assert tokens == [TOKEN]
    assert apply_all(rt) == (0, 0)  # a dead letter is not taken again
    assert not track_inbox.any_pending(rt.engine)


def test_unknown_uninstalled_and_bad_origin_answer_as_before(inbox_app: Any) -> None:
    rt, client = inbox_app
    assert send(client, beacon(shop="nobody-here.myshopify.com")).status_code == 404
    assert send(client, beacon(), origin="https://evil.example.com").status_code == 403
    assert send(client, beacon(), origin=None).status_code == 403
    assert inbox_rows(rt) == []
    with rt.sessions.begin() as session:
        session.execute(update(t.Store).values(uninstalled_at=datetime.now(UTC)))
    assert send(client, beacon()).status_code == 404
    assert inbox_rows(rt) == []


def test_an_origin_allowed_only_after_normalization_is_stored(inbox_app: Any) -> None:
    rt, client = inbox_app
    with rt.sessions.begin() as session:  # stored as typed: the statement's exact match misses it
        set_settings(session, get_store(session, SHOP), ["allowed_origins=https://Shop.Example.com"])
    assert send(client, beacon(), origin="https://shop.example.com").status_code == 204
    assert send(client, beacon(), origin="https://other.example.com").status_code == 403
    assert len(inbox_rows(rt)) == 1


def test_answer_beacons_stay_synchronous(inbox_app: Any) -> None:
    rt, client = inbox_app
    answer = send(client, beacon("exit"))
    assert answer.status_code == 200 and "popup" in answer.json
    assert send(client, beacon("contact", contact={"email": "ada@example.com"}, cart={"token": TOKEN},
                              consent={"marketing": True})).status_code == 204
    assert inbox_rows(rt) == []
    with rt.sessions() as session:
        assert session.scalar(select(t.Cart.email)) == "ada@example.com"


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_limits_are_unchanged_with_the_inbox(
    pg_url: str, tmp_path: Path, storage: str, request: pytest.FixtureRequest
) -> None:
    redis_url = request.getfixturevalue("redis_url") if storage == "redis" else None
    rt, app = _app(pg_url, tmp_path, redis_url, track_ip_limit="3/minute", track_shop_limit="5/minute")
    try:
        add_store(rt)
        client = app.test_client()
        # Refused beacons (unknown shop, bad origin) never count against the shop's limit.
        for _ in range(6):
            assert send(client, beacon(), origin="https://evil.example.com", ip="198.51.100.50").status_code in (403, 429)
        codes = [send(client, beacon(), ip="198.51.100.1").status_code for _ in range(4)]
        assert codes == [204, 204, 204, 429]
        limited = send(client, beacon(), ip="198.51.100.1")
        assert limited.json == {"error": "too many requests from this address"}
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        codes = [send(client, beacon(), ip=f"198.51.100.{i}").status_code for i in (2, 3, 4)]
        assert codes == [204, 204, 429]
        shop_limited = send(client, beacon(), ip="198.51.100.9")
        assert (shop_limited.status_code, shop_limited.json) == (429, {"error": "too many requests for this shop"})
        assert 1 <= int(shop_limited.headers["Retry-After"]) <= 60
        assert len(inbox_rows(rt)) == 5  # exactly the accepted ones
        if storage == "redis":  # shared windows: a second web process sees the same counts
            other = create_app(runtime=rt).test_client()
            assert send(other, beacon(), ip="198.51.100.1").status_code == 429
            assert send(other, beacon(), ip="198.51.100.10").status_code == 429
    finally:
        rt.close()


def test_refused_bodies_count_against_the_address_with_the_inbox(pg_url: str, tmp_path: Path) -> None:
    """Bad bodies are refused before the limits of a good one are counted, but not for free: one address
    sending only garbage is limited as on the synchronous path (else it could keep the parser busy)."""
    rt, app = _app(pg_url, tmp_path, track_ip_limit="5/minute")
    try:
        add_store(rt)
        client = app.test_client()
        ip = "198.51.100.77"
        codes = [send(client, b"{not json", ip=ip).status_code for _ in range(4)]
        codes.append(send(client, beacon(), content_type="application/xml", ip=ip).status_code)
        codes.append(send(client, b"x" * 9000, ip=ip).status_code)
        assert codes == [400, 400, 400, 400, 415, 429]
        assert send(client, beacon(), ip=ip).status_code == 429
        assert send(client, beacon(), ip="198.51.100.78").status_code == 204  # another address is not held
    finally:
        rt.close()


def test_the_abandoner_waits_for_a_newer_beacon_in_the_inbox(inbox_app: Any) -> None:
    rt, client = inbox_app
    assert send(client, beacon()).status_code == 204
    apply_all(rt)
    with rt.sessions.begin() as session:  # the cart has an address and has been idle past its delay
        session.execute(update(t.Cart).values(email="ada@example.com", abandon_at=datetime.now(UTC) - timedelta(minutes=1)))
    assert send(client, beacon()).status_code == 204  # the shopper is back; the beacon waits in the inbox
    with rt.sessions.begin() as session:
        assert rt.abandoner.run(session, datetime.now(UTC)) == []
    apply_all(rt)
    with rt.sessions.begin() as session:
        assert rt.abandoner.run(session, datetime.now(UTC)) == []
        cart = session.scalars(select(t.Cart)).one()
        assert cart.status == "active" and cart.abandon_at > datetime.now(UTC)


def test_the_abandoner_waits_for_a_checkout_beacon_that_names_only_the_checkout(inbox_app: Any) -> None:
    """The web pixel's checkout beacons carry the checkout token, not the cart token: the abandoner must see
    such a beacon waiting too (review: the cart was abandoned, then the beacon moved its time)."""
    rt, client = inbox_app
    assert send(client, beacon()).status_code == 204
    apply_all(rt)
    with rt.sessions.begin() as session:
        session.execute(update(t.Cart).values(email="ada@example.com", checkout_token="ck1234abcd",
                                              abandon_at=datetime.now(UTC) - timedelta(minutes=1)))
    started = beacon("checkout_started", checkout_token="ck1234abcd", page="checkout")
    assert send(client, started).status_code == 204
    assert [r.checkout_token for r in inbox_rows(rt)] == ["ck1234abcd"]
    with rt.sessions.begin() as session:
        assert rt.abandoner.run(session, datetime.now(UTC)) == []
    apply_all(rt)
    with rt.sessions.begin() as session:
        assert rt.abandoner.run(session, datetime.now(UTC)) == []
        cart = session.scalars(select(t.Cart)).one()
        assert cart.status == "active" and cart.abandon_at > datetime.now(UTC)


def test_a_lone_surrogate_is_a_400_not_a_storage_error(inbox_app: Any) -> None:
    """JSON may spell a lone surrogate ("\\ud800"); PostgreSQL cannot store one: refused as bad input (it was
    answered 503 "storage is unavailable", on both paths)."""
    rt, client = inbox_app
    body = beacon()
    body["cart"]["items"][0]["title"] = "Tote \ud800"
    answer = send(client, body)
    assert answer.status_code == 400 and "surrogate" in answer.json["error"]
    assert inbox_rows(rt) == []


def test_the_dispatcher_relay_applies_beacons_within_seconds(inbox_app: Any) -> None:
    rt, client = inbox_app
    stop = threading.Event()
    relay = threading.Thread(target=track_relay_forever, args=(rt, stop, 0.02), daemon=True)
    relay.start()
    try:
        assert send(client, beacon()).status_code == 204
        deadline = time.monotonic() + 5
        while inbox_rows(rt) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert inbox_rows(rt) == []
        with rt.sessions() as session:
            assert session.scalar(select(t.Cart.cart_token)) == TOKEN
    finally:
        stop.set()
        relay.join(5)


def test_an_unreachable_redis_falls_back_to_local_limits_with_the_inbox(pg_url: str, tmp_path: Path) -> None:
    rt, app = _app(pg_url, tmp_path, "redis://127.0.0.1:1/0", track_ip_limit="2/minute", track_shop_limit="3/minute")
    try:
        add_store(rt)
        client = app.test_client()
        started = time.monotonic()
        assert [send(client, beacon()).status_code for _ in range(3)] == [204, 204, 429]
        assert [send(client, beacon(), ip="198.51.100.2").status_code for _ in range(2)] == [204, 429]  # the shop's 3
        assert time.monotonic() - started < 5
        assert len(inbox_rows(rt)) == 3
    finally:
        rt.close()


def test_a_new_cart_is_inserted_with_its_first_beacon_applied_and_not_updated(inbox_app: Any) -> None:
    """The relay inserts a batch's new carts as `apply_beacon` leaves them: no UPDATE of the row it just
    inserted (that UPDATE was the relay's costliest statement), and the row is the synchronous path's."""
    from sqlalchemy import event

    rt, client = inbox_app
    ts = int(time.time() * 1000) - 60_000
    for n in range(3):
        body = beacon(ts=ts + n, tz="Europe/Lisbon", device="mobile")
        body["cart"] = {**body["cart"], "token": f"c1-new-{n}"}
        assert send(client, body).status_code == 204
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()[:2]))

    event.listen(rt.engine, "before_cursor_execute", seen)
    try:
        assert apply_all(rt) == (3, 0)
    finally:
        event.remove(rt.engine, "before_cursor_execute", seen)
    assert "INSERT INTO" in statements and "UPDATE carts" not in statements
    with rt.sessions() as session:
        carts = list(session.scalars(select(t.Cart).where(t.Cart.cart_token.like("c1-new-%"))))
    assert len(carts) == 3
    assert all(c.line_items and c.total == Decimal("123.45") and c.tracked_at and c.abandon_at for c in carts)
    assert {(c.device, c.shopper_timezone) for c in carts} == {("mobile", "Europe/Lisbon")}
