"""WooCommerce activation through a fake store over real HTTP: grant, key callback, webhooks, reconcile."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import func, select

from connectors.woocommerce import SUBSCRIBED
from connectors.woocommerce.reconcile import run_due
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.storage.tables import utcnow
from tests.conftest import ENCRYPTION_KEY
from tests.support.fake_woocommerce import wp_json_encode
from tests.woo_helpers import Woo, make_woo, woo  # noqa: F401  (fixture)


def _count(w: Woo, table: type) -> int:
    with w.rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_activation_stores_sealed_keys_and_creates_signed_webhooks(woo: Woo) -> None:  # noqa: F811
    store = woo.store_row()
    assert (store.platform, store.domain, store.currency) == (
        "woocommerce",
        woo.store.url.split("://")[1],
        "EUR",
    )
    [key] = woo.store.keys  # the keys we confirmed are the ones the store still has
    assert key.encode() not in store.credentials  # type: ignore[operator]
    assert Vault([ENCRYPTION_KEY]).open(store.credentials)["consumer_key"] == key  # type: ignore[arg-type]
    # One active webhook per topic, each pointing at our store-key URL, each with its own strong secret
    hooks = sorted(woo.store.webhooks.values(), key=lambda h: h["topic"])
    assert sorted(h["topic"] for h in hooks) == sorted(SUBSCRIBED)
    with woo.rt.sessions() as session:
        connection = session.scalars(select(t.WooConnection)).one()
    assert {h["delivery_url"] for h in hooks} == {
        f"{woo.live.url}/webhooks/woocommerce/{connection.store_key}"
    }
    assert {h["status"] for h in hooks} == {"active"}
    secrets = [woo.store.secrets[h["id"]] for h in hooks]
    assert len(set(secrets)) == 4 and all(len(s) >= 64 and s.isalnum() for s in secrets)
    # Every creation ping was answered with exactly 200
    assert [status for _, status in woo.store.pings] == [200, 200, 200, 200]
    # The plugin got the app URL, the store key and the restore secret
    assert woo.store.plugin_settings is not None
    assert woo.store.plugin_settings["store_key"] == connection.store_key
    assert len(woo.store.plugin_settings["restore_secret"]) == 64
    # The shop's address (CAN-SPAM: every email carries it) came from WooCommerce's general settings
    # (WooCommerce 9's "DE:DE-BE": the state without its repeated country), and the store's name from the
    # site title, not the host
    assert woo.store_row().settings["postal_address"] == "8 Example Gasse, Beispielstadt 10115, BE, DE"
    assert woo.store_row().name == "Beispiel Laden"


def test_authorize_redirect_carries_the_documented_parameters(woo: Woo) -> None:  # noqa: F811
    answer = woo.client.get("/auth/woocommerce", query_string={"store_url": woo.store.url + "/"})
    assert answer.status_code == 302
    parts = urlsplit(answer.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{woo.store.url}/wc-auth/v1/authorize"
    assert query["app_name"] == "CartResQ" and query["scope"] == "read_write"
    assert query["callback_url"] == f"{woo.live.url}/auth/woocommerce/callback"
    assert query["return_url"] == f"{woo.live.url}/auth/woocommerce/return"
    assert len(query["user_id"]) >= 40


def test_plain_http_store_is_refused_without_the_development_flag(database_url: str, tmp_path: Path) -> None:
    from app import create_app
    from app.runtime import build_runtime
    from tests.conftest import make_settings

    rt = build_runtime(make_settings(database_url, tmp_path))
    try:
        answer = (
            create_app(runtime=rt).test_client().get("/auth/woocommerce?store_url=http://shop.example.com")
        )
        assert answer.status_code == 400 and "https" in answer.get_data(as_text=True)
    finally:
        rt.close()


def test_unknown_and_reused_user_ids_are_refused(woo: Woo) -> None:  # noqa: F811
    stores_before = _count(woo, t.Store)
    grant = {
        "key_id": 9,
        "user_id": "not-one-of-ours",
        "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40,
        "key_permissions": "read_write",
    }
    answer = requests.post(f"{woo.live.url}/auth/woocommerce/callback", data=json.dumps(grant), timeout=10)
    assert answer.status_code == 400 and "unknown user_id" in answer.text
    # A second grant for an activation already used: refused, and WooCommerce then deletes those keys
    start = woo.client.get("/auth/woocommerce", query_string={"store_url": woo.store.url})
    location = start.headers["Location"]
    assert woo.store.grant(location)  # first use works
    keys_before = set(woo.store.keys)
    assert woo.store.grant(location) == ""  # reused user_id: not 200
    assert set(woo.store.keys) == keys_before
    assert _count(woo, t.Store) == stores_before


def test_callback_refuses_keys_the_store_does_not_accept(woo: Woo) -> None:  # noqa: F811
    start = woo.client.get("/auth/woocommerce", query_string={"store_url": woo.store.url})
    user_id = parse_qs(urlsplit(start.headers["Location"]).query)["user_id"][0]
    grant = {
        "key_id": 9,
        "user_id": user_id,
        "consumer_key": "ck_" + "a" * 40,
        "consumer_secret": "cs_" + "b" * 40,
        "key_permissions": "read_write",
    }
    answer = requests.post(f"{woo.live.url}/auth/woocommerce/callback", data=json.dumps(grant), timeout=10)
    assert answer.status_code == 400 and "not accepted" in answer.text


def test_read_only_keys_and_garbage_are_refused(woo: Woo) -> None:  # noqa: F811
    start = woo.client.get("/auth/woocommerce", query_string={"store_url": woo.store.url})
    assert woo.store.grant(start.headers["Location"], permissions="read") == ""
    assert woo.client.post("/auth/woocommerce/callback", data=b"{not json").status_code == 400


def test_denied_grant_shows_a_clear_page_and_connects_nothing(database_url: str, tmp_path: Path) -> None:
    for woo in make_woo(database_url, tmp_path, activated=False):  # noqa: F402
        start = woo.client.get("/auth/woocommerce", query_string={"store_url": woo.store.url})
        page = requests.get(woo.store.deny(start.headers["Location"]), timeout=10)
        assert page.status_code == 200 and "was not connected" in page.text
        assert _count(woo, t.Store) == 0 and woo.store.webhooks == {}


def test_creation_ping_gets_exactly_200_and_writes_nothing(woo: Woo) -> None:  # noqa: F811
    before = _count(woo, t.WebhookDelivery)
    answer = woo.client.post(woo.webhook_path, data={"webhook_id": "123"})
    assert answer.status_code == 200
    assert _count(woo, t.WebhookDelivery) == before
    assert woo.client.post("/webhooks/woocommerce/no-such-key", data={"webhook_id": "1"}).status_code == 404


def test_reconcile_re_enables_a_disabled_webhook_and_recreates_a_deleted_one(woo: Woo) -> None:  # noqa: F811
    # Given WooCommerce disabled one webhook after failures and the merchant deleted another
    disabled = woo.store.hook_for("order.updated")
    for _ in range(6):
        woo.live.app, real = (
            (lambda env, start: (start("500 Internal Server Error", []), [b""])[1]),
            woo.live.app,
        )
        try:
            woo.store.deliver("order.updated", {"id": 1})
        finally:
            woo.live.app = real
    assert disabled["status"] == "disabled"
    deleted_id = woo.store.hook_for("product.updated")["id"]
    del woo.store.webhooks[deleted_id]
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
    # Then the disabled one is active again and the deleted one exists again, with a fresh secret we know
    assert report.error is None
    assert report.webhooks["order.updated"] == "re-enabled (was disabled)"
    assert report.webhooks["product.updated"] == "recreated"
    assert disabled["status"] == "active"
    recreated = woo.store.hook_for("product.updated")
    assert recreated["id"] != deleted_id and recreated["status"] == "active"
    product = {"id": 412, "price": "19.00", "date_modified_gmt": "2026-09-15T10:00:00"}
    assert woo.store.deliver("product.updated", product) == 200  # verifies with the new secret
    # and a second pass finds nothing to do
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
    assert again.webhooks == {} and again.error is None
    assert wp_json_encode({"u": "a/b"}) == b'{"u":"a\\/b"}'


def test_the_dispatcher_runs_the_reconcile_when_a_store_is_due(woo: Woo) -> None:  # noqa: F811
    from app import dispatcher

    woo.store.hook_for("order.created")["status"] = "paused"
    with woo.rt.sessions.begin() as session:
        session.scalars(select(t.WooConnection)).one().next_reconcile_at = utcnow()
    dispatcher._woo["next"] = 0.0  # this process's 30 s gate may have been used by an earlier test
    dispatcher.run_once(woo.rt)
    thread = dispatcher._woo["thread"]
    thread.join(30)  # type: ignore[union-attr]
    assert woo.store.hook_for("order.created")["status"] == "active"
    with woo.rt.sessions() as session:
        assert session.scalars(select(t.WooConnection.next_reconcile_at)).one() > utcnow()
