"""Install (embedded token exchange and authorization code), refresh, expiry, re-auth, uninstall/reinstall."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select

from app.runtime import Runtime
from connectors.shopify import auth
from connectors.shopify.tokens import NeedsReauth
from recovery.storage import tables as t
from tests.conftest import drain
from tests.loop_helpers import HOUR, abandon_all, now, send_due
from tests.shopify_app_helpers import API_KEY, SECRET, credentials, expire_token, fake, install, rt, store, web  # noqa: F401
from tests.support import shopify
from tests.support.fake_shopify import FakeShopify, session_token
from tests.support.shopify import SHOP


def stores(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(t.Store)) or 0


def test_embedded_first_load_exchanges_the_session_token_for_an_expiring_offline_token(rt, web, fake: FakeShopify) -> None:
    response = install(web)
    assert response.status_code == 200
    assert "frame-ancestors https://velvet-fern.myshopify.com https://admin.shopify.com" in response.headers["Content-Security-Policy"]
    exchange = [r for r in fake.requests if r["path"] == "/admin/oauth/access_token"]
    assert len(exchange) == 1 and exchange[0]["shop"] == SHOP
    body = exchange[0]["body"]
    assert body["grant_type"] == "urn:ietf:params:oauth:grant-type:token-exchange"
    assert body["subject_token_type"] == "urn:ietf:params:oauth:token-type:id_token"
    assert body["requested_token_type"] == "urn:shopify:params:oauth:token-type:offline-access-token"
    assert body["expiring"] == 1
    row, creds = store(rt), credentials(rt)
    assert creds["access_token"] in fake.shop(SHOP).access_tokens
    assert creds["refresh_token"] in fake.shop(SHOP).refresh_tokens
    assert creds["access_token"].encode() not in row.credentials  # encrypted at rest
    assert 3500 < (row.access_token_expires_at - t.utcnow()).total_seconds() <= 3600
    # A later request with a token does not exchange again.
    web.get("/", headers={"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"})
    assert len([r for r in fake.requests if r["path"] == "/admin/oauth/access_token"]) == 1


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "wrong audience", "expired", "foreign shop domain"],
)
def test_bad_session_tokens_are_refused_and_write_nothing(rt, web, fake: FakeShopify, case: str) -> None:
    token = {
        "wrong secret": session_token(SHOP, API_KEY, "shpss_" + "f" * 32),
        "wrong audience": session_token(SHOP, "someone-else", SECRET),
        "expired": session_token(SHOP, API_KEY, SECRET, now=time.time() - 120),
        "foreign shop domain": session_token("evil.example.com", API_KEY, SECRET),
    }[case]
    response = web.get("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert stores(rt) == 0 and fake.requests == []


def test_document_load_without_a_token_bounces_to_the_patch_page(web) -> None:  # type: ignore[no-untyped-def]
    response = web.get(f"/?shop={SHOP}")
    assert response.status_code == 302
    assert "/auth/shopify/patch-id-token" in response.headers["Location"]
    page = web.get(response.headers["Location"])
    assert page.status_code == 200 and b"app-bridge.js" in page.data


def signed_callback(params: dict[str, str], secret: str = SECRET) -> str:
    query = dict(params, hmac=auth.query_hmac(params, secret))
    return "/auth/shopify/callback?" + "&".join(f"{k}={v}" for k, v in query.items())


def start_install(web, fake: FakeShopify) -> str:  # type: ignore[no-untyped-def]
    response = web.get(f"/auth/shopify?shop={SHOP}")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    query = parse_qs(location.query, keep_blank_values=True)
    assert location.netloc == SHOP and location.path == "/admin/oauth/authorize"
    assert query["client_id"] == [API_KEY] and query["redirect_uri"] == ["http://127.0.0.1:8000/auth/shopify/callback"]
    assert len(query["state"][0]) >= 22  # ≥ 128 bits, URL-safe base64
    fake.shop(SHOP).codes.add("code-123")
    return query["state"][0]


def test_authorization_code_grant_installs_once_per_state(rt, web, fake: FakeShopify) -> None:
    state = start_install(web, fake)
    params = {"code": "code-123", "shop": SHOP, "state": state, "timestamp": str(int(time.time()))}
    response = web.get(signed_callback(params))
    assert response.status_code == 302 and response.headers["Location"] == f"https://{SHOP}/admin/apps/{API_KEY}"
    token_call = [r for r in fake.requests if r["path"] == "/admin/oauth/access_token"][-1]["body"]
    assert token_call["code"] == "code-123" and token_call["expiring"] == "1"
    assert credentials(rt)["access_token"] in fake.shop(SHOP).access_tokens
    replay = web.get(signed_callback(params))  # the state was single-use
    assert replay.status_code == 403 and b"state" in replay.data


@pytest.mark.parametrize("case", ["bad hmac", "stale timestamp", "bad shop", "unknown state", "refused code"])
def test_callback_failures_are_4xx_with_a_reason_and_write_no_store(rt, web, fake: FakeShopify, case: str) -> None:
    state = start_install(web, fake)
    params = {"code": "code-123", "shop": SHOP, "state": state, "timestamp": str(int(time.time()))}
    secret = SECRET
    if case == "bad hmac":
        secret = "shpss_" + "e" * 32
    elif case == "stale timestamp":
        params["timestamp"] = str(int(time.time()) - 91)
    elif case == "bad shop":
        params["shop"] = "velvet-fern.myshopify.com.evil.example"
    elif case == "unknown state":
        params["state"] = "A" * 43
    else:
        params["code"] = "never-issued"
    response = web.get(signed_callback(params, secret))
    expected = {"bad hmac": 401, "stale timestamp": 400, "bad shop": 400, "unknown state": 403, "refused code": 400}[case]
    assert response.status_code == expected
    assert response.get_json()["detail"]
    assert stores(rt) == 0


def test_an_expired_token_is_refreshed_before_the_call_and_the_old_refresh_token_dies(rt, web, fake: FakeShopify) -> None:
    install(web)
    before = credentials(rt)
    expire_token(rt)
    rt.shopify.admin.execute(SHOP, "query OurWebhooks { webhookSubscriptions(first: 100) { nodes { id topic } } }")
    after = credentials(rt)
    assert after["refresh_token"] != before["refresh_token"] and after["access_token"] != before["access_token"]
    refresh = [r for r in fake.requests if r["body"].get("grant_type") == "refresh_token"]
    assert len(refresh) == 1 and refresh[0]["body"]["refresh_token"] == before["refresh_token"]
    assert fake.graphql_calls()[-1]["headers"]["X-Shopify-Access-Token"] == after["access_token"]
    assert before["refresh_token"] not in fake.shop(SHOP).refresh_tokens
    assert store(rt).access_token_expires_at > t.utcnow()


def test_the_periodic_refresh_job_and_a_concurrent_refresher_do_not_clobber_each_other(rt, web, fake: FakeShopify) -> None:
    install(web)
    expire_token(rt)
    # A second refresher (another dispatcher) gets in while the first one's request is in flight.
    fake.on_refresh = lambda: rt.shopify.tokens.refresh(SHOP)
    outcomes = rt.shopify.tokens.refresh_due()
    assert outcomes == {SHOP: "refreshed"}
    row, creds = store(rt), credentials(rt)
    assert row.needs_reauth_at is None
    assert creds["refresh_token"] in fake.shop(SHOP).refresh_tokens  # the stored pair is the live one


def test_refresh_failure_marks_reauth_stops_platform_calls_but_not_planned_emails(rt, web, fake: FakeShopify) -> None:
    install(web)
    with rt.sessions.begin() as session:
        row = session.scalar(select(t.Store))
        row.settings = {**row.settings, "holdout_percent": 0}  # the postal address came from the install
    shopify.post(web, "checkouts_update", secret=SECRET)
    drain(rt)
    abandon_all(rt, now() + 2 * HOUR)
    expire_token(rt)
    fake.refresh_error = "invalid_grant"
    calls = len(fake.graphql_calls())
    with pytest.raises(NeedsReauth):
        rt.shopify.admin.execute(SHOP, "query { shop { name } }")
    with pytest.raises(NeedsReauth):  # no second refresh attempt, no call
        rt.shopify.admin.execute(SHOP, "query { shop { name } }")
    assert len(fake.graphql_calls()) == calls
    assert len([r for r in fake.requests if r["body"].get("grant_type") == "refresh_token"]) == 1
    row = store(rt)
    assert row.needs_reauth_at is not None and "invalid_grant" in row.reauth_reason
    assert "sent" in send_due(rt, now() + 6 * HOUR)  # recovery emails already planned still go out
    # The dashboard says so (while the exchange cannot fix it either).
    fake.exchange_error = "invalid_subject_token"
    page = web.get("/", headers={"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"})
    assert page.status_code == 200 and b"needs re-authorization" in page.data
    # Opening the app once Shopify accepts the session token again re-authorizes the store.
    fake.exchange_error = None
    page = web.get("/", headers={"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"})
    assert b"needs re-authorization" not in page.data and store(rt).needs_reauth_at is None


def test_uninstall_drops_the_tokens_and_a_reinstall_revives_the_store(rt, web, fake: FakeShopify) -> None:
    install(web)
    first = store(rt)
    shopify.post(web, "app_uninstalled", secret=SECRET)
    drain(rt)
    gone = store(rt)
    assert gone.uninstalled_at is not None and gone.credentials is None
    with pytest.raises(NeedsReauth):
        rt.shopify.admin.execute(SHOP, "query { shop { name } }")
    install(web)
    back = store(rt)
    assert back.id == first.id and back.uninstalled_at is None
    assert credentials(rt)["access_token"] in fake.shop(SHOP).access_tokens


def test_toml_scopes_are_exactly_the_default_shopify_scopes() -> None:
    import tomllib
    from pathlib import Path

    from recovery.config.settings import Settings

    config = tomllib.loads((Path(__file__).resolve().parents[1] / "shopify.app.toml").read_text())
    declared = config["access_scopes"]["scopes"].split(",")
    assert len(declared) == len(set(declared))
    env = {"SECRET_KEY": "x", "CARTRESQ_ENCRYPTION_KEY": "k"}  # nothing is generated on disk
    from_env = Settings.from_env(env).shopify_scopes.split(",")
    assert set(declared) == set(Settings(database_url="sqlite://").shopify_scopes.split(",")) == set(from_env)
    # What the code calls needs these (platform-facts: abandonedCheckouts → read_orders, discounts → write_discounts).
    assert {"read_orders", "read_customers", "read_products", "read_inventory", "write_discounts"} <= set(declared)
