"""The plan page says what applies to this store, and its buttons never end in a 500 or raw JSON: a store that
must reconnect is sent to reconnect, the trial is promised only while the store can still get one, the
Enterprise form shows only where it can be delivered, a held-back cart says why on its page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from tests.conftest import make_settings
from tests.shopify_app_helpers import API_KEY, SECRET, fake, install  # noqa: F401
from tests.support import shopify
from tests.support.fake_shopify import FakeShopify, session_token

SHOP = shopify.SHOP
OPERATOR = {"Authorization": "Bearer billing-pages-operator-token"}


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeShopify) -> Iterator[Runtime]:  # noqa: F811
    runtime = build_runtime(make_settings(
        database_url, tmp_path, shopify_admin_base=fake.base, shopify_api_secret=SECRET, billing=True,
        admin_token=OPERATOR["Authorization"].split()[1],
    ))  # fmt: skip
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(SHOP, API_KEY, SECRET)}"}


def test_choosing_a_plan_while_the_store_must_reconnect_sends_the_merchant_to_reconnect(rt: Runtime, web) -> None:
    install(web, SHOP)
    with rt.sessions.begin() as session:  # the token refresh failed: platform calls stop (tokens.NeedsReauth)
        store = session.scalar(select(t.Store).where(t.Store.domain == SHOP))
        store.needs_reauth_at, store.reauth_reason = t.utcnow(), "token refresh failed: invalid_grant"
    # The operator's door (no session token to exchange): the Billing API call finds no usable token.
    page = web.post(f"/app/billing/subscribe?store={SHOP}", data={"plan": "starter"}, headers=OPERATOR)
    html = page.get_data(as_text=True)
    assert page.status_code == 409, html[:300]
    assert "Reconnect to Shopify first" in html and "Nothing was charged" in html
    assert f'href="/auth/shopify?shop={SHOP}"' in html and 'target="_top"' in html
