"""WooCommerce offers (coupons through the REST API, applied by the restore link, cleaned up by the
reconcile pass), the checkout marketing opt-in, and the tracker script the plugin loads from the app."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from app import create_app
from app.web.assets import TRACKER
from app.runtime import Runtime
from connectors.woocommerce.coupons import WooOffers
from connectors.woocommerce.normalize import normalize
from connectors.woocommerce.reconcile import reconcile_store
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.messages.links import LinkSigner
from recovery.config.store_settings import parse_assignments
from recovery.storage.tables import utcnow
from tests.conftest import ENCRYPTION_KEY
from tests.loop_helpers import HOUR, abandon_all, messages, now, send_due
from tests.support.fake_woocommerce import load
from tests.woo_helpers import Woo, woo  # noqa: F401  (fixtures)

OFFER_FIRST = '[{"channel":"email","template":"offer","delay":"1h"}]'


def _gmt(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _configure(w: Woo, *pairs: str) -> None:
    with w.rt.sessions.begin() as session:
        store = session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()
        store.settings = {**(store.settings or {}), **parse_assignments(list(pairs))}


def _us_order() -> dict[str, object]:
    us = {**load("order_created__classic_pending")["billing"], "country": "US", "state": "OR"}
    return {"billing": us, "date_modified_gmt": _gmt(now())}


def _send_offer(w: Woo) -> tuple[int, t.DiscountCode]:
    _configure(w, f"sequence={OFFER_FIRST}", "offer_percent=15", "offer_window=2d")
    w.deliver("order_created__classic_pending", **_us_order())  # type: ignore[arg-type]
    at = now() + 2 * HOUR
    [cart_id] = abandon_all(w.rt, at)
    assert send_due(w.rt, at + 5 * HOUR) == ["sent"]
    with w.rt.sessions() as session:
        code = session.scalars(select(t.DiscountCode)).one()
    return cart_id, code


def _restore_token(w: Woo, cart_id: int) -> str:
    [message] = messages(w.rt, cart_id)
    return LinkSigner("test-secret-key").sign("restore", message.id, cart_id)


def test_offer_step_makes_a_single_use_coupon_for_the_shopper_and_the_link_applies_it(woo: Woo) -> None:  # noqa: F811
    before = utcnow()
    cart_id, row = _send_offer(woo)
    coupon = woo.store.coupon_by_code(row.code)
    assert row.platform_id == str(coupon["id"]) and row.percent == 15 and row.code.startswith("crq-")
    assert (
        coupon["discount_type"],
        coupon["amount"],
        coupon["usage_limit"],
        coupon["usage_limit_per_user"],
    ) == (
        "percent",
        "15.00",
        1,
        1,
    )
    assert coupon["individual_use"] is True and coupon["email_restrictions"] == ["lena.brandt@example.com"]
    expires = datetime.fromisoformat(coupon["date_expires_gmt"] + "+00:00")
    assert before + timedelta(days=2) - timedelta(seconds=5) <= expires <= utcnow() + timedelta(days=2)
    [email] = woo.fake.sent
    assert row.code in email.html and row.code in email.text  # type: ignore[union-attr]
    # The restore link lands on the plugin's endpoint with the offer code for WC()->cart->apply_coupon
    answer = woo.client.get(f"/r/{_restore_token(woo, cart_id)}")
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}" == woo.store.url and location.path == "/"
    assert query["coupon"] == [row.code] and len(query["cartresq_restore"]) == 1
    # A retried send reuses the code instead of making another
    assert len(woo.store.coupons) == 1


def test_a_store_that_refuses_coupons_gets_a_plain_reminder(woo: Woo) -> None:  # noqa: F811
    with woo.rt.sessions.begin() as session:  # the merchant revoked our REST keys
        store = session.scalars(select(t.Store).where(t.Store.platform == "woocommerce")).one()
        store.credentials = Vault((ENCRYPTION_KEY,)).seal({"consumer_key": "ck_x", "consumer_secret": "cs_x"})
    _configure(woo, f"sequence={OFFER_FIRST}", "offer_percent=15")
    woo.deliver("order_created__classic_pending", **_us_order())  # type: ignore[arg-type]
    at = now() + 2 * HOUR
    abandon_all(woo.rt, at)
    assert send_due(woo.rt, at + 5 * HOUR) == ["sent"]
    [email] = woo.fake.sent
    assert "crq-" not in email.html and woo.store.coupons == {}  # type: ignore[union-attr]
    with woo.rt.sessions() as session:
        assert session.scalars(select(t.DiscountCode)).all() == []


def test_reconcile_deletes_expired_unused_coupons_and_keeps_used_ones(woo: Woo) -> None:  # noqa: F811
    _, row = _send_offer(woo)
    used_id = int(row.platform_id or 0)
    woo.store.coupons[used_id]["usage_count"] = 1  # the shopper ordered with it
    with woo.rt.sessions() as session:  # a second code of ours on the store, never used
        store = session.get(t.Store, row.store_id)
        issued = WooOffers(Vault((ENCRYPTION_KEY,)), allow_http=True, allow_private=True).create_code(
            store,
            None,
            10,
            utcnow() + HOUR,  # type: ignore[arg-type]
        )
    with woo.rt.sessions.begin() as session:  # both expired
        session.add(
            t.DiscountCode(
                store_id=row.store_id,
                cart_id=None,
                message_id=None,
                code=issued.code,
                platform_id=issued.platform_id,
                percent=10,
                ends_at=utcnow() - HOUR,
                created_at=utcnow() - 3 * HOUR,
            )
        )
        session.get(t.DiscountCode, row.id).ends_at = utcnow() - HOUR  # type: ignore[union-attr]
    report = reconcile_store(
        woo.rt.sessions,
        woo.rt.engine,
        Vault((ENCRYPTION_KEY,)),
        row.store_id,
        app_url=woo.live.url,
        allow_http=True,
        allow_private=True,  # the fake store listens on 127.0.0.1
        hand_off=woo.rt.hand_off_delivery,
    )
    assert report.error is None and report.coupons == {"deleted": 1, "used": 1, "failed": 0}
    assert set(woo.store.coupons) == {used_id}  # deleted with force=true, not trashed
    assert ("DELETE", f"/wp-json/wc/v3/coupons/{issued.platform_id}") in woo.store.requests
    with woo.rt.sessions() as session:
        outcomes = {
            c.code: (c.outcome, c.deleted_at is not None) for c in session.scalars(select(t.DiscountCode))
        }
    assert outcomes == {row.code: ("used", True), issued.code: ("deleted", True)}
    # a second pass has nothing left to do
    again = reconcile_store(
        woo.rt.sessions,
        woo.rt.engine,
        Vault((ENCRYPTION_KEY,)),
        row.store_id,
        app_url=woo.live.url,
        allow_http=True,
        allow_private=True,  # the fake store listens on 127.0.0.1
        hand_off=woo.rt.hand_off_delivery,
    )
    assert again.coupons == {"deleted": 0, "used": 0, "failed": 0}


def test_checkout_opt_in_meta_is_email_consent() -> None:
    opted = normalize("order.created", load("order_created__classic_opt_in")).event
    plain = normalize("order.created", load("order_created__classic_pending")).event
    assert opted.contact.accepts_email is True and plain.contact.accepts_email is False  # type: ignore[union-attr]
    block = {**load("order_updated__block_checkout_draft")}
    block["meta_data"] = [{"id": 3, "key": "_wc_other/cartresq/marketing-opt-in", "value": "1"}]
    assert normalize("order.updated", block).event.contact.accepts_email is True  # type: ignore[union-attr]
    block["meta_data"] = [{"id": 3, "key": "_cartresq_marketing_opt_in", "value": "no"}]
    assert normalize("order.updated", block).event.contact.accepts_email is False  # type: ignore[union-attr]
    assert normalize("order.updated", block).event.contact.accepts_sms is False  # type: ignore[union-attr]
    # the SMS box (classic field, or the block's additional field) is SMS consent, and only that
    block["meta_data"] = [{"id": 4, "key": "_wc_other/cartresq/sms-opt-in", "value": "1"}]
    contact = normalize("order.updated", block).event.contact  # type: ignore[union-attr]
    assert (contact.accepts_sms, contact.accepts_email) == (True, False)


def test_eu_shopper_is_emailed_only_with_the_plugins_opt_in(woo: Woo) -> None:  # noqa: F811
    woo.deliver("order_created__classic_pending", date_modified_gmt=_gmt(now()))  # DE, no opt-in
    woo.deliver("order_created__classic_opt_in", date_modified_gmt=_gmt(now()))  # DE, ticked the box
    at = now() + 2 * HOUR
    blocked, opted = abandon_all(woo.rt, at)
    outcomes = send_due(woo.rt, at + 5 * HOUR)
    assert sorted(outcomes) == ["cancelled: no_email_consent_region_DE", "sent"]
    [email] = woo.fake.sent
    assert email.to == "mara.keller@example.com"  # type: ignore[union-attr]
    assert [m.status for m in messages(woo.rt, opted)][0] == "sent"
    assert [m.status for m in messages(woo.rt, blocked)][0] == "cancelled"


def test_tracker_script_is_served_cacheable_with_an_etag(runtime: Runtime) -> None:
    client = create_app(runtime=runtime).test_client()
    answer = client.get("/static/cartresq-tracker.js?ver=0.1.0")
    assert answer.status_code == 200 and answer.data == Path(TRACKER).read_bytes()
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "public" in answer.headers["Cache-Control"] and "max-age=604800" in answer.headers["Cache-Control"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    etag = answer.headers["ETag"]
    again = client.get("/static/cartresq-tracker.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    changed = client.get("/static/cartresq-tracker.js", headers={"If-None-Match": '"stale"'})
    assert changed.status_code == 200
    assert client.get("/static/other.js").status_code == 404
