"""What `cartresq serve` and the demo print opens the merchant app in a browser: /operator challenges for basic
auth (a browser only sends credentials after a 401 with WWW-Authenticate), takes the operator token as the
password, and sends the browser on to /app/, which then shows the store."""

from __future__ import annotations

import base64

from app.runtime import Runtime
from tests.conftest import ADMIN_TOKEN, SHOP, add_store

BROWSER = {"Accept": "text/html,application/xhtml+xml"}


def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode(), **BROWSER}


def test_the_printed_token_opens_the_merchant_app_in_a_browser(runtime: Runtime, self_hosted_client) -> None:
    add_store(runtime)
    client = self_hosted_client
    client.environ_base.pop("HTTP_AUTHORIZATION")  # a browser: no credentials until challenged
    first = client.get("/operator", headers=BROWSER)
    assert first.status_code == 401 and first.headers["WWW-Authenticate"].startswith('Basic realm="CartResQ"')
    assert client.get("/operator", headers=basic("not-the-token")).status_code == 401
    signed = client.get("/operator", headers=basic(ADMIN_TOKEN))
    assert signed.status_code == 303 and signed.headers["Location"].endswith("/app/")
    # The browser now sends the credentials with every request below "/": the app shows the store.
    app = client.get("/app/", headers=basic(ADMIN_TOKEN))
    assert app.status_code == 200 and SHOP in app.get_data(as_text=True)
    assert client.get("/", headers=basic(ADMIN_TOKEN)).status_code == 200  # the operator's cross-store view


def test_the_sign_in_form_points_the_operator_to_its_door(runtime: Runtime, self_hosted_client) -> None:
    self_hosted_client.environ_base.pop("HTTP_AUTHORIZATION")
    html = self_hosted_client.get("/app/sign-in", headers=BROWSER).get_data(as_text=True)
    assert 'href="/operator"' in html and "sign in as the operator" in html

