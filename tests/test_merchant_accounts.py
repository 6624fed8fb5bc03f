"""Standalone merchant accounts: sign-in, sessions, CSRF, rate limit, reset by emailed link, store switcher,
and isolation (an account never reaches another account's store, whatever id or domain it names)."""

from __future__ import annotations

import re

import pytest

from app.runtime import Runtime
from tests.conftest import add_store
from tests.merchant_helpers import PASSWORD, body_of, csrf_of, make_account, outbox_emails, sign_in, token_for

SHOP_A, SHOP_B, SHOP_C = "amber-loom.myshopify.com", "birch-kiln.myshopify.com", "cedar-quay.myshopify.com"
PAGES = ["/app/", "/app/setup", "/app/flow", "/app/templates", "/app/status"]


def test_sign_in_sets_a_secure_session_cookie_and_sign_out_ends_it(runtime: Runtime, client) -> None:
    store = add_store(runtime, SHOP_A)
    make_account(runtime, "owner@example.com", store)
    assert client.get("/app/").status_code == 302  # to the sign-in page
    answer = sign_in(client, "Owner@Example.com")
    assert answer.status_code == 303
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith("cartresq_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/app/")
    assert page.status_code == 200 and SHOP_A in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    assert client.post("/app/sign-out", data={"csrf_token": token}).status_code == 303
    assert client.get("/app/").status_code == 302


def test_wrong_password_is_refused_without_saying_whether_the_account_exists(runtime: Runtime, client) -> None:
    make_account(runtime, "owner@example.com", add_store(runtime, SHOP_A))
    wrong = sign_in(client, "owner@example.com", "not the password")
    unknown = sign_in(client, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True) and "do not match" in unknown.get_data(as_text=True)


def test_every_form_needs_its_csrf_token(runtime: Runtime, client) -> None:
    make_account(runtime, "owner@example.com", add_store(runtime, SHOP_A))
    refused = client.post("/app/sign-in", data={"email": "owner@example.com", "password": PASSWORD})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    sign_in(client, "owner@example.com")
    for path, data in [("/app/flow", {"op": "save"}), ("/app/setup/address", {"postal_address": "x"}),
                       ("/app/templates", {"op": "save"}), ("/app/sign-out", {})]:
        assert client.post(path, data=data).status_code == 400, path
    assert client.get("/app/").status_code == 200  # still signed in: the forged sign-out did nothing


def test_public_routes_stay_free_of_csrf(client) -> None:
    # webhooks, beacons and provider callbacks post without a CSRF token: they answer for their own reasons
    assert client.post("/webhooks/shopify", data=b"{}").status_code == 401  # unsigned, not "CSRF missing"
    assert client.post("/track", data=b"{}", content_type="text/plain").status_code in (400, 403)


def test_sign_in_is_rate_limited_per_account_even_with_the_right_password(runtime: Runtime, client) -> None:
    make_account(runtime, "owner@example.com", add_store(runtime, SHOP_A))
    for _ in range(5):
        assert sign_in(client, "owner@example.com", "wrong password!").status_code == 401
    limited = sign_in(client, "owner@example.com")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_sign_in_is_rate_limited_per_address(runtime: Runtime, client) -> None:
    make_account(runtime, "owner@example.com", add_store(runtime, SHOP_A))
    for n in range(30):
        sign_in(client, f"guess{n}@example.com", "wrong password!")
    assert sign_in(client, "owner@example.com").status_code == 429


def test_password_reset_by_emailed_link_works_once(runtime: Runtime, client) -> None:
    make_account(runtime, "owner@example.com", add_store(runtime, SHOP_A))
    token = token_for(client, "/app/forgot")
    assert client.post("/app/forgot", data={"email": "owner@example.com", "csrf_token": token}).status_code == 200
    client.post("/app/forgot", data={"email": "stranger@example.com", "csrf_token": token})  # same answer, no mail
    mails = outbox_emails(runtime)
    assert [m["To"] for m in mails] == ["owner@example.com"]
    link = re.search(r"http\S+/app/reset/\S+", body_of(mails[0])).group(0)
    # An account email, not marketing: no one-click unsubscribe pointing anywhere
    assert mails[0]["List-Unsubscribe"] is None and mails[0]["List-Unsubscribe-Post"] is None
    path = link.split("127.0.0.1:8000")[-1] if "127.0.0.1:8000" in link else "/app/" + link.split("/app/", 1)[1]
    form = token_for(client, path)
    assert client.post(path, data={"password": "short", "csrf_token": form}).status_code == 400
    assert client.post(path, data={"password": "a brand new secret", "csrf_token": form}).status_code == 303
    assert client.get(path).status_code == 404  # used
    assert client.get("/app/").status_code == 200  # the reset signed this browser in
    client.post("/app/sign-out", data={"csrf_token": token_for(client, "/app/")})
    assert sign_in(client, "owner@example.com").status_code == 401  # the old password is gone
    assert sign_in(client, "owner@example.com", "a brand new secret").status_code == 303


def test_store_switcher_moves_between_the_accounts_own_stores(runtime: Runtime, client) -> None:
    a, b = add_store(runtime, SHOP_A), add_store(runtime, SHOP_B)
    make_account(runtime, "owner@example.com", a, b)
    sign_in(client, "owner@example.com")
    page = client.get("/app/").get_data(as_text=True)
    assert 'name="store"' in page and SHOP_A in page
    client.post("/app/switch", data={"store": SHOP_B, "csrf_token": csrf_of(page)})
    assert "<h2>" + SHOP_B in client.get("/app/").get_data(as_text=True)


@pytest.mark.parametrize("path", PAGES)
def test_an_account_never_sees_another_accounts_store(runtime: Runtime, client, path: str) -> None:
    a, b = add_store(runtime, SHOP_A), add_store(runtime, SHOP_B)
    make_account(runtime, "owner@example.com", a)
    make_account(runtime, "other@example.com", b)
    sign_in(client, "owner@example.com")
    assert client.get(f"{path}?store={SHOP_B}").status_code == 404
    own = client.get(path)
    assert own.status_code == 200 and SHOP_B not in own.get_data(as_text=True)
    token = csrf_of(own.get_data(as_text=True))
    client.post("/app/switch", data={"store": SHOP_B, "csrf_token": token})  # not one of its stores: ignored
    assert SHOP_B not in client.get(path).get_data(as_text=True)


def test_posts_naming_another_store_change_nothing(runtime: Runtime, client) -> None:
    a, b = add_store(runtime, SHOP_A), add_store(runtime, SHOP_B)
    make_account(runtime, "owner@example.com", a)
    sign_in(client, "owner@example.com")
    from recovery.storage import tables as t

    with runtime.sessions.begin() as db:  # a dead letter of store B
        letter = t.WebhookDelivery(store_id=b, platform="shopify", shop=SHOP_B, topic="orders/create",
                                   delivery_id="b-1", payload={"id": 1}, attempts=5, error="boom")
        db.add(letter)
        db.flush()
        letter.failed_at = letter.processed_at = letter.received_at
        letter_id = letter.id
    token = token_for(client, "/app/setup")
    assert client.post(f"/app/status/deliveries/{letter_id}/retry", data={"csrf_token": token}).status_code == 404
    with runtime.sessions() as db:
        assert db.get(t.WebhookDelivery, letter_id).failed_at is not None  # B's dead letter stays dead
    for path in ("/app/setup/address", "/app/flow", "/app/templates", f"/app/status/deliveries/{letter_id}/retry"):
        answer = client.post(f"{path}?store={SHOP_B}", data={"csrf_token": token, "postal_address": "1 Other Rd"})
        assert answer.status_code == 404, path
    from tests.merchant_helpers import store_settings

    assert store_settings(runtime, b).get("postal_address") != "1 Other Rd"


def test_the_operator_token_is_not_a_merchant_password(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime, SHOP_A)
    self_hosted_client.environ_base.pop("HTTP_AUTHORIZATION")
    from tests.conftest import ADMIN_TOKEN

    token = token_for(self_hosted_client, "/app/sign-in")
    answer = self_hosted_client.post("/app/sign-in", data={"email": "operator@example.com", "password": ADMIN_TOKEN,
                                                           "csrf_token": token})
    assert answer.status_code == 401
