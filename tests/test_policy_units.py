"""Units of the send policy: bot detection, zone resolution, settings, consent records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.runtime import build_runtime
from recovery.intake import bots
from recovery.consent import records as consent
from recovery.storage import tables as t
from recovery.config.store_settings import parse_cap
from recovery.sending.policy.zones import candidate_zones
from recovery.config.store_settings import SettingError, parse_assignments
from tests.conftest import add_store, make_settings


@pytest.mark.parametrize("email, agent, reason", [
    ("bot@storebotmail.joonix.net", None, "crawler_address"),
    ("someone@mailinator.com", None, "disposable_domain"),
    ("maren@example.com", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler_ua"),
    ("maren@example.com", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
     "crawler_ua"),
    ("maren@example.com", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
     None),
    ("maren@example.com", None, None),
])
def test_bot_classification(email: str, agent: str | None, reason: str | None) -> None:
    assert bots.classify(email, agent) == reason


def test_local_zone_resolution_prefers_the_browser_then_address_and_phone_then_store() -> None:
    assert candidate_zones("Europe/Paris", "US", "NC", "+18285550147", "UTC") == ("Europe/Paris",)
    assert candidate_zones("Not/AZone", "US", "NC", None, "UTC") == ("America/New_York",)
    # address in Texas (Central and Mountain) and a Los Angeles phone: all three are candidates
    assert set(candidate_zones(None, "US", "TX", "+12135550123", "UTC")) == {
        "America/Chicago", "America/Denver", "America/Los_Angeles"}
    assert candidate_zones(None, "GB", None, None, "UTC")[0] == "Europe/London"
    assert candidate_zones(None, None, None, None, "Asia/Tokyo") == ("Asia/Tokyo",)


def test_policy_settings_are_validated() -> None:
    assert parse_cap("1/16h") == 16 * 3600 and parse_cap("off") is None
    assert parse_assignments(["sms_window=09:00-20:00", "email_quiet_hours=22:00-07:00"]) == {
        "sms_window": "09:00-20:00", "email_quiet_hours": "22:00-07:00"}
    for bad in ("shopper_cap=3/1h", "sms_window=8-21", "email_consent_policy=everyone", "email_quiet_hours=25:00-01:00"):
        with pytest.raises(SettingError):
            parse_assignments([bad])


@pytest.fixture
def sessions(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = build_runtime(make_settings(database_url, tmp_path))
    add_store(runtime)
    yield runtime.sessions
    runtime.close()


def test_consent_records_latest_wins_and_stale_never_overrides(sessions) -> None:  # type: ignore[no-untyped-def]
    day = datetime(2026, 9, 1, tzinfo=UTC)
    with sessions.begin() as session:
        store_id = session.scalars(select(t.Store.id)).one()
        assert consent.record(session, store_id, "sms", "+1 (828) 555-0147", granted=True, basis="double_opt_in",
                              source="sms_keyword", at=day)
        assert consent.record(session, store_id, "sms", "+18285550147", granted=False, basis="withdrawn",
                              source="sms_keyword", at=day + timedelta(days=2))
        # a retried, older opt-in changes nothing
        consent.record(session, store_id, "sms", "+18285550147", granted=True, basis="explicit_opt_in",
                                  source="shopify_checkout", at=day + timedelta(days=1))
        assert consent.record(session, store_id, "email", " Maren@Example.com ", granted=True,
                              basis="explicit_opt_in", source="merchant", at=day)
    with sessions() as session:
        rows = {(c.channel, c.address): (c.granted, c.basis) for c in session.scalars(select(t.Consent))}
    assert rows == {("sms", "+18285550147"): (False, "withdrawn"), ("email", "maren@example.com"): (True, "explicit_opt_in")}
