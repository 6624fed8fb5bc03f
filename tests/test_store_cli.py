"""`cartresq store add|set|show` against a real database file, through the click entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from recovery import tables as t
from recovery.crypto import Vault
from recovery.db import make_engine, make_sessionmaker
from recovery.store_settings import SettingError, format_duration, parse_duration
from tests.conftest import ENCRYPTION_KEY

SHOP = "quiet-harbor.myshopify.com"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CARTRESQ_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CARTRESQ_ENCRYPTION_KEY", ENCRYPTION_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return CliRunner()


def stored(tmp_path: Path) -> t.Store:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'cartresq.db'}")
    with make_sessionmaker(engine)() as session:
        store = session.scalars(select(t.Store)).one()
    engine.dispose()
    return store


def test_add_set_show_round_trip(cli: CliRunner, tmp_path: Path) -> None:
    added = cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP, "--token", "shpat_abc123"])
    assert added.exit_code == 0, added.output
    changed = cli.invoke(main, ["store", "set", SHOP, "abandon_after=15m", "holdout_percent=20", "timezone=Europe/Berlin"])
    assert changed.exit_code == 0, changed.output
    shown = cli.invoke(main, ["store", "show", SHOP, "--json"])
    settings = json.loads(shown.output)["settings"]
    assert (settings["abandon_after"], settings["holdout_percent"], settings["timezone"]) == ("15m", "20", "Europe/Berlin")
    assert settings["attribution_window"] == "5d"  # default
    store = stored(tmp_path)
    assert store.settings == {"abandon_after": 900, "holdout_percent": 20, "timezone": "Europe/Berlin"}
    assert store.timezone == "Europe/Berlin"
    # The token is stored encrypted, and decrypts with the configured key
    assert store.credentials is not None and b"shpat_abc123" not in store.credentials
    assert Vault([ENCRYPTION_KEY]).open(store.credentials) == {"access_token": "shpat_abc123"}


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["abandon_after=15x"], "is not a duration"),
        (["holdout_percent=140"], "outside 0..100"),
        (["nonsense=1"], "unknown setting 'nonsense'"),
        (["timezone=Mars/Olympus"], "IANA time zone"),
        (["abandon_after"], "is not KEY=VALUE"),
        (["abandon_after=0s"], "longer than zero"),
    ],
)
def test_bad_settings_fail_clearly_and_change_nothing(cli: CliRunner, tmp_path: Path, pairs: list[str], message: str) -> None:
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    cli.invoke(main, ["store", "set", SHOP, "abandon_after=2h"])
    # A good pair next to a bad one is not applied either
    result = cli.invoke(main, ["store", "set", SHOP, "holdout_percent=30", *pairs])
    assert result.exit_code != 0
    assert message in result.output
    assert stored(tmp_path).settings == {"abandon_after": 7200}


def test_store_add_rejects_a_domain_that_is_not_a_shop(cli: CliRunner) -> None:
    for bad in ["evil.com", "shop.myshopify.com.evil.com", "-x.myshopify.com", "a b.myshopify.com"]:
        result = cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", bad])
        assert result.exit_code != 0 and "myshopify.com" in result.output, bad


def test_unknown_store_is_a_clear_error(cli: CliRunner) -> None:
    result = cli.invoke(main, ["store", "show", "nobody-here.myshopify.com"])
    assert result.exit_code == 1 and "no store 'nobody-here.myshopify.com'" in result.output


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("4h", 14400), ("3d", 259200), ("120", 120)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "4 hours", "h", "-5m", "1.5.h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(SettingError):
        parse_duration(text)


def test_durations_are_shown_in_the_largest_whole_unit() -> None:
    assert [format_duration(s) for s in (90, 900, 14400, 259200, 3601)] == ["90s", "15m", "4h", "3d", "3601s"]


def test_sequence_and_window_settings_are_validated_together(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    good = '[{"channel": "email", "template": "gentle_reminder", "delay": null}, {"channel": "sms", "template": "offer", "delay": 7200, "min_total": "20"}]'
    assert cli.invoke(main, ["store", "set", SHOP, f"sequence={good}"]).exit_code == 0
    assert stored(tmp_path).settings["sequence"][1] == {"channel": "sms", "template": "offer", "delay": 7200, "min_total": "20"}
    bad = '[{"channel": "fax", "template": "offer", "delay": 60}]'
    result = cli.invoke(main, ["store", "set", SHOP, f"sequence={bad}"])
    assert result.exit_code != 0 and "channel must be email, sms or push" in result.output
    result = cli.invoke(main, ["store", "set", SHOP, "first_message_min=5h", "first_message_max=2h"])
    assert result.exit_code != 0 and "first_message_min must not be later" in result.output
    assert "first_message_min" not in stored(tmp_path).settings
