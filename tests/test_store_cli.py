"""`cartresq store add|set|show` against a real database file, through the click entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from recovery.storage import tables as t
from recovery.storage.crypto import Vault
from recovery.storage.db import make_engine, make_sessionmaker
from recovery.config.store_settings import SettingError, format_duration, parse_duration
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
        # values that overflowed a date (every cart beacon a 500) or silently meant "never"
        (["abandon_after=3000000d"], "too long: at most 365d"),
        (["abandon_after=99999999999999999d"], "too long"),
        (["abandon_after=8d"], "at most 7d"),
        (["attribution_window=91d"], "at most 90d"),
        (["sms_min_cart_value=NaN"], "enter an amount from 0 to"),
        (["sms_min_cart_value=Infinity"], "enter an amount from 0 to"),
        (["sms_min_cart_value=1E+999999"], "enter an amount from 0 to"),
        # an arm at or above the margin loses money on every order it wins, and the bandit keeps a floor on it
        (["offer_arms=0,10,40"], "below margin_percent (40)"),
        (["offer_arms=0,5,10,15", "margin_percent=15"], "below margin_percent (15)"),
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
    good = '[{"channel": "email", "template": "gentle_reminder", "delay": null}, {"channel": "sms", "template": "offer", "delay": "2h", "min_total": "20"}]'
    assert cli.invoke(main, ["store", "set", SHOP, f"sequence={good}"]).exit_code == 0
    assert stored(tmp_path).settings["sequence"][1] == {"channel": "sms", "template": "offer", "delay": 7200, "min_total": "20"}
    bad = '[{"channel": "fax", "template": "offer", "delay": "1m"}]'
    result = cli.invoke(main, ["store", "set", SHOP, f"sequence={bad}"])
    assert result.exit_code != 0 and "channel must be email, sms or push" in result.output
    result = cli.invoke(main, ["store", "set", SHOP, "first_message_min=5h", "first_message_max=2h"])
    assert result.exit_code != 0 and "first_message_min must not be later" in result.output
    assert "first_message_min" not in stored(tmp_path).settings


# --- operator conveniences (issue 25) ---


def test_version(cli: CliRunner) -> None:
    from importlib.metadata import version

    result = cli.invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"cartresq, version {version('cartresq')}"


def test_list_and_remove_with_confirmation(cli: CliRunner, tmp_path: Path) -> None:
    assert "no stores" in cli.invoke(main, ["store", "list"]).output
    other = "amber-lantern.myshopify.com"
    for shop in (SHOP, other):
        assert cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", shop]).exit_code == 0
    listed = json.loads(cli.invoke(main, ["store", "list", "--json"]).output)
    assert [row["domain"] for row in listed] == [other, SHOP]
    # Answering no (or nothing) keeps the store
    refused = cli.invoke(main, ["store", "remove", SHOP], input="n\n")
    assert refused.exit_code != 0 and "cannot be undone" in refused.output
    assert SHOP in cli.invoke(main, ["store", "list"]).output
    confirmed = cli.invoke(main, ["store", "remove", SHOP], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert cli.invoke(main, ["store", "remove", other, "--yes"]).exit_code == 0
    assert "no stores" in cli.invoke(main, ["store", "list"]).output
    missing = cli.invoke(main, ["store", "remove", SHOP, "--yes"])
    assert missing.exit_code == 1 and "no store" in missing.output


def test_unset_puts_settings_back_to_their_defaults(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    assert cli.invoke(main, ["store", "set", SHOP, "abandon_after=2h", "currency=EUR", "holdout_percent=5"]).exit_code == 0
    assert stored(tmp_path).currency == "EUR"
    result = cli.invoke(main, ["store", "unset", SHOP, "abandon_after", "currency"])
    assert result.exit_code == 0, result.output
    store = stored(tmp_path)
    assert store.settings == {"holdout_percent": 5} and store.currency == "USD"
    shown = json.loads(cli.invoke(main, ["store", "show", SHOP, "--json"]).output)
    assert shown["settings"]["abandon_after"] == "1h" and "abandon_after" in shown["defaults"]
    bad = cli.invoke(main, ["store", "unset", SHOP, "holdout_percent", "nonsense"])
    assert bad.exit_code == 1 and "unknown setting 'nonsense'" in bad.output
    assert stored(tmp_path).settings == {"holdout_percent": 5}


def test_unset_is_checked_across_keys(cli: CliRunner, tmp_path: Path) -> None:
    # first_message_max back to its default (4h) would put it before a 6h minimum: refused
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    cli.invoke(main, ["store", "set", SHOP, "first_message_max=8h", "first_message_min=6h"])
    result = cli.invoke(main, ["store", "unset", SHOP, "first_message_max"])
    assert result.exit_code == 1 and "first_message_min must not be later" in result.output
    assert stored(tmp_path).settings["first_message_max"] == 8 * 3600


@pytest.mark.parametrize(
    "pair, message",
    [
        ("abandon_after=10", "'10' has no unit: write 10s, 10m, 10h or 10d"),
        ("offer_window=3600", "has no unit"),
        ("shopper_cap=1/3600", "has no unit"),
        ("currency=XYZ", "not an ISO 4217 currency code"),
        ("sms_window=08:00-23:00", "wider than the law allows"),
        ("sms_window=07:00-20:00", "wider than the law allows"),
        ("sms_window=20:00-09:00", "wider than the law allows"),
        ('sequence=[{"channel": "email", "template": "offer", "delay": 3600}]', "delay 3600 has no unit"),
        ("sequence=email:gentle_reminder, email:offer+3600", "has no unit"),
        ("sequence=email:gentle_reminder, email:offer in 1d", "is not a step"),
        ("email_quiet_hours=22:00-22:00", "quiet all day"),  # equal ends: the whole day, no email ever
        ("email_quiet_hours=00:00-24:00", "quiet all day"),
        ("email_quiet_hours=06:00-03:00", "leaves only 3 h a day to send email"),
        ("email_quiet_hours=08:00-04:30", "leaves only 3 h 30 min a day"),
    ],
)
def test_values_that_would_surprise_are_refused(cli: CliRunner, tmp_path: Path, pair: str, message: str) -> None:
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    result = cli.invoke(main, ["store", "set", SHOP, pair])
    assert result.exit_code == 1 and message in result.output, result.output
    assert stored(tmp_path).settings == {}


def test_units_currencies_and_lawful_windows_are_accepted(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    pairs = ["abandon_after=10m", "currency=eur", "sms_window=09:00-20:30", "shopper_cap=1/12h",
             "email_quiet_hours=18:00-14:00"]  # quiet hours leaving exactly 4 h open are still accepted
    assert cli.invoke(main, ["store", "set", SHOP, *pairs]).exit_code == 0
    assert stored(tmp_path).settings == {
        "abandon_after": 600, "currency": "EUR", "sms_window": "09:00-20:30", "shopper_cap": "1/12h",
        "email_quiet_hours": "18:00-14:00",
    }


def test_the_sequence_takes_units_and_show_prints_the_steps_that_apply(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP])
    default = cli.invoke(main, ["store", "show", SHOP])
    line = next(x for x in default.output.splitlines() if x.strip().startswith("sequence"))
    assert line.split(None, 1)[1] == (
        "email:gentle_reminder, email:value_proposition+1d, sms:offer+2d>50, email:final_call+3d  (default)"
    )
    compact = "email:gentle_reminder, push:value_proposition+12h, sms:offer+1d>20, email:final_call+3d"
    assert cli.invoke(main, ["store", "set", SHOP, f"sequence={compact}"]).exit_code == 0
    assert stored(tmp_path).settings["sequence"] == [
        {"channel": "email", "template": "gentle_reminder", "delay": None, "min_total": None},
        {"channel": "push", "template": "value_proposition", "delay": 43200, "min_total": None},
        {"channel": "sms", "template": "offer", "delay": 86400, "min_total": "20"},
        {"channel": "email", "template": "final_call", "delay": 259200, "min_total": None},
    ]
    # What show prints, set reads back
    shown = json.loads(cli.invoke(main, ["store", "show", SHOP, "--json"]).output)["settings"]["sequence"]
    assert shown == compact
    # The default sequence follows sms_min_cart_value
    cli.invoke(main, ["store", "unset", SHOP, "sequence"])
    cli.invoke(main, ["store", "set", SHOP, "sms_min_cart_value=80"])
    shown = json.loads(cli.invoke(main, ["store", "show", SHOP, "--json"]).output)["settings"]["sequence"]
    assert "sms:offer+2d>80" in shown


def test_configuration_errors_are_one_line_and_a_nonzero_exit(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://cartresq:hunter2@127.0.0.1:{port}/nowhere")
    result = cli.invoke(main, ["store", "list"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the database at "), result.output
    assert "DATABASE_URL" in lines[0] and "hunter2" not in lines[0] and "Traceback" not in result.output
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("CARTRESQ_ENCRYPTION_KEY", "not-a-fernet-key")
    result = cli.invoke(main, ["store", "add", "--platform", "shopify", "--shop", SHOP, "--token", "shpat_x"])
    assert result.exit_code == 2 and result.output.startswith("error: CARTRESQ_ENCRYPTION_KEY:"), result.output
    monkeypatch.setenv("CARTRESQ_TIME_SCALE", "-1")
    result = cli.invoke(main, ["store", "list"])
    assert result.exit_code == 2 and "CARTRESQ_TIME_SCALE must be a positive number" in result.output


def test_broker_errors_are_one_line(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{port}/0")
    result = cli.invoke(main, ["dispatcher"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: cannot use Redis at redis://127.0.0.1:") and "(REDIS_URL)" in result.output
    worker = cli.invoke(main, ["worker"])
    assert worker.exit_code == 2 and worker.output.startswith(f"error: cannot reach redis://127.0.0.1:{port}/0 (REDIS_URL)")


def test_request_logs_have_no_colour_codes_when_not_a_terminal() -> None:
    import io
    import logging
    import threading

    import httpx
    from flask import Flask
    from werkzeug.serving import make_server

    from app.cli_errors import plain_request_logs

    web = Flask("t")
    web.add_url_rule("/missing", view_func=lambda: ("no", 404))
    stream = io.StringIO()  # not a terminal
    handler = logging.StreamHandler(stream)
    logging.getLogger("werkzeug").addHandler(handler)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    server = make_server("127.0.0.1", 0, web, request_handler=plain_request_logs())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert httpx.get(f"http://127.0.0.1:{server.server_port}/missing").status_code == 404
    finally:
        server.shutdown()
        logging.getLogger("werkzeug").removeHandler(handler)
    assert '"GET /missing HTTP/1.1" 404' in stream.getvalue() and "\x1b[" not in stream.getvalue()
