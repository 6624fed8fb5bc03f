"""`cartresq account create`: a merchant account on the sign-in's own rules, linked to stores, that then signs in
at /app/sign-in and sees its store only."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app import create_app
from app.cli import main
from app.runtime import build_runtime
from tests.conftest import ENCRYPTION_KEY, make_settings
from tests.merchant_helpers import sign_in

SHOP, OTHER = "quiet-harbor.myshopify.com", "loud-quarry.myshopify.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CARTRESQ_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARTRESQ_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    for shop in (SHOP, OTHER):
        assert runner.invoke(main, ["store", "add", "--platform", "shopify", "--shop", shop]).exit_code == 0
    return runner


def test_account_create_signs_in_and_sees_its_store(cli: CliRunner, tmp_path: Path) -> None:
    made = cli.invoke(main, ["account", "create", "Owner@Example.com", "--store", SHOP], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert made.exit_code == 0, made.output
    assert "owner@example.com" not in made.output.lower() and PASSWORD not in made.output  # never echoed back
    rt = build_runtime(make_settings(f"sqlite:///{tmp_path / 'var' / 'cartresq.db'}", tmp_path))
    try:
        web = create_app(runtime=rt).test_client()
        assert sign_in(web, "owner@example.com", PASSWORD).status_code == 303
        assert web.get(f"/app/?store={SHOP}").status_code == 200
        assert web.get(f"/app/?store={OTHER}").status_code == 404  # not linked
    finally:
        rt.close()


@pytest.mark.parametrize("args, password, message", [
    (["not-an-email", "--store", SHOP], PASSWORD, "enter an email address"),
    (["owner@example.com", "--store", SHOP], "short", "use at least 10 characters"),
    (["owner@example.com", "--store", "nowhere.myshopify.com"], PASSWORD, "nowhere.myshopify.com"),
])  # fmt: skip
def test_account_create_refuses_what_the_sign_in_would(cli: CliRunner, args: list[str], password: str, message: str) -> None:
    refused = cli.invoke(main, ["account", "create", *args], input=f"{password}\n{password}\n")
    assert refused.exit_code == 1 and message in refused.output, refused.output


def test_account_create_refuses_a_second_account_for_the_same_email(cli: CliRunner) -> None:
    first = cli.invoke(main, ["account", "create", "owner@example.com", "--store", SHOP], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert first.exit_code == 0, first.output
    again = cli.invoke(main, ["account", "create", "OWNER@example.com", "--store", OTHER], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert again.exit_code == 1 and "exists already" in again.output
