"""`cartresq shopify reconcile [SHOP]` through the click entry point, against a fake Shopify over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from recovery.storage import tables as t
from recovery.storage.db import make_engine, make_sessionmaker
from tests.conftest import ENCRYPTION_KEY
from tests.shopify_app_helpers import API_KEY, SECRET, fake  # noqa: F401
from tests.support.fake_shopify import FakeShopify
from tests.support.shopify import SHOP
from tests.test_shopify_reconcile import checkout

TOKEN = "shpat_cli0123456789abcdef"


@pytest.fixture
def cli(database_url: str, tmp_path: Path, fake: FakeShopify, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name, value in {
        "DATABASE_URL": database_url, "CARTRESQ_VAR_DIR": str(tmp_path / "var"), "CARTRESQ_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "SHOPIFY_API_KEY": API_KEY, "SHOPIFY_API_SECRET": SECRET, "SHOPIFY_ADMIN_BASE": fake.base,
    }.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    added = runner.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP, "--token", TOKEN])
    assert added.exit_code == 0, added.output
    fake.shop(SHOP).access_tokens.add(TOKEN)
    return runner


def rows(database_url: str) -> tuple[list[t.Cart], t.Store]:
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.scalars(select(t.Cart))), session.scalars(select(t.Store)).one()
    finally:
        engine.dispose()


def test_reconcile_one_shop_now(cli: CliRunner, fake: FakeShopify, database_url: str) -> None:
    state = fake.shop(SHOP)
    state.checkouts = [checkout(1, "ada@example.com", (t.utcnow()).strftime("%Y-%m-%dT%H:%M:%SZ"))]
    state.custom_domains = ["www.velvetfern.example.com"]
    result = cli.invoke(main, ["shopify", "reconcile", SHOP])
    assert result.exit_code == 0, result.output
    assert f"{SHOP}: 1 checkouts, 0 orders; 1 filled in (missed webhooks)" in result.output
    carts, store = rows(database_url)
    assert [c.checkout_token for c in carts] == ["tok1abc"] and carts[0].email == "ada@example.com"
    assert store.reconciled_at is not None
    assert store.settings["allowed_origins"] == ["https://www.velvetfern.example.com"]
    assert all(c["headers"]["X-Shopify-Access-Token"] == TOKEN for c in fake.graphql_calls())


def test_reconcile_all_and_the_failures(cli: CliRunner, fake: FakeShopify, database_url: str) -> None:
    result = cli.invoke(main, ["shopify", "reconcile"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{SHOP}: 0 checkouts, 0 orders")
    unknown = cli.invoke(main, ["shopify", "reconcile", "nobody-here.myshopify.com"])
    assert unknown.exit_code == 1 and "no Shopify store" in unknown.output
    fake.shop(SHOP).access_tokens.clear()  # the token was revoked on the shop
    refused = cli.invoke(main, ["shopify", "reconcile", SHOP])
    assert refused.exit_code == 1 and "failed: AdminError" in refused.output
    again = cli.invoke(main, ["shopify", "reconcile"])
    assert again.exit_code == 1 and f"{SHOP}: failed: AdminError" in again.output
