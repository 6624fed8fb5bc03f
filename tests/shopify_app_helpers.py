"""Fixtures for the Shopify app tests: a fake Shopify over HTTP and a runtime pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from connectors.shopify import auth
from recovery.storage import tables as t
from tests.conftest import make_settings
from tests.support.fake_shopify import FakeShopify, session_token
from tests.support.shopify import SHOP

API_KEY = "test-api-key"
#: Shopify client secrets are 38 characters; PyJWT warns about shorter HMAC keys.
SECRET = "shpss_" + "0123456789abcdef" * 2


@pytest.fixture
def fake() -> Iterator[FakeShopify]:
    server = FakeShopify(API_KEY, SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, fake: FakeShopify) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, tmp_path, shopify_admin_base=fake.base, shopify_api_secret=SECRET))
    yield runtime
    runtime.close()


@pytest.fixture
def web(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def install(web, shop: str = SHOP):  # type: ignore[no-untyped-def]
    """The embedded first load: Shopify admin opens the app with a session token in `id_token`."""
    return web.get(f"/app/?shop={shop}&embedded=1&id_token={session_token(shop, API_KEY, SECRET)}")


def store(rt: Runtime, shop: str = SHOP) -> t.Store:
    with rt.sessions() as session:
        found = session.scalar(select(t.Store).where(t.Store.domain == shop))
        assert found is not None
        return found


def credentials(rt: Runtime, shop: str = SHOP) -> dict[str, str]:
    return rt.shopify.vault.open(store(rt, shop).credentials)  # type: ignore[no-any-return]


def expire_token(rt: Runtime, shop: str = SHOP) -> None:
    with rt.sessions.begin() as session:
        row = session.scalar(select(t.Store).where(t.Store.domain == shop))
        row.access_token_expires_at = t.utcnow() - timedelta(minutes=1)


__all__ = ["API_KEY", "SECRET", "auth", "credentials", "expire_token", "install", "store"]
