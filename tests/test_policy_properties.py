"""Property tests (Hypothesis) of the send policy's decisions: quiet hours, windows, consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from recovery.consent import records as consent
from recovery.sending.policy.hours import Window, allowed_at, next_allowed, sms_window, strict_state
from recovery.sending.policy.zones import candidate_zones

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
FAST = settings(max_examples=150, deadline=None)


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    number = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if number else None
    return region, e164 or ""


due_times = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
us_codes = st.sampled_from([305, 405, 212, 828, 907, 808, 918, 954, 415, 602])


@FAST
@given(phone=phones(), browser=st.none() | st.sampled_from(ZONES), due=due_times,
       province=st.none() | st.sampled_from(["FL", "OK", "NC", "TX", "CA", "HI", "ON", "NSW"]))
def test_no_sms_is_ever_scheduled_in_quiet_hours(phone: tuple[str, str], browser: str | None, due: datetime,
                                                  province: str | None) -> None:
    region, number = phone
    zones = candidate_zones(browser, region, province, number, "UTC")
    window = sms_window("08:00-21:00", region, province, number)
    moment = next_allowed(due, zones, window)
    if moment is None:
        return  # no common hour within a week: the message is cancelled, not sent
    assert moment >= due
    last = 20 if strict_state(region, province, number) else 21
    for zone in zones:
        local = moment.astimezone(ZoneInfo(zone))
        assert 8 <= local.hour < last, (zone, local)
    if allowed_at(due, zones, window):
        assert moment == due  # never moved when it was already allowed


@FAST
@given(code=us_codes, due=due_times)
def test_florida_and_oklahoma_numbers_stop_at_eight_pm(code: int, due: datetime) -> None:
    number = f"+1{code}5550123"
    zones = candidate_zones(None, None, None, number, "UTC")
    moment = next_allowed(due, zones, sms_window("08:00-21:00", "US", None, number))
    assert moment is not None
    if code in (305, 405, 918, 954):
        assert all(moment.astimezone(ZoneInfo(z)).hour < 20 for z in zones)


@FAST
@given(start=st.integers(0, 23), end=st.integers(0, 23), minute=st.integers(0, 24 * 60 - 1))
def test_quiet_hours_and_window_are_exact_complements(start: int, end: int, minute: int) -> None:
    text = f"{start:02d}:00-{end:02d}:00"
    window, quiet = Window.parse(text), Window.quiet(text)
    if start != end:
        assert window.allows(minute) != quiet.allows(minute)
    store = Window.parse(text) & Window.parse("08:00-21:00")
    if store.allows(minute):
        assert 8 * 60 <= minute < 21 * 60  # a store window never widens the law


EEA = sorted(consent.PRIOR_CONSENT_COUNTRIES)


@FAST
@given(country=st.sampled_from(EEA + ["US", "CA", "AU", "BR", "JP"]), accepts=st.booleans(),
       orders=st.integers(0, 3), policy=st.sampled_from(consent.POLICIES),
       record=st.none() | st.sampled_from([(True, "explicit_opt_in"), (False, "withdrawn")]))
def test_email_policy(country: str, accepts: bool, orders: int, policy: str, record: tuple[bool, str] | None) -> None:
    cart = SimpleNamespace(country=country, phone=None, accepts_email=accepts)
    customer = SimpleNamespace(email_consent=False, orders_count=orders)
    rec = consent.Record(record[0], record[1], datetime(2026, 1, 1, tzinfo=UTC)) if record else None
    blocked = consent.email_block(policy, cart, customer, rec)  # type: ignore[arg-type]
    subscribed = (rec is not None and rec.granted) or accepts
    if rec is not None and not rec.granted:
        assert blocked == "email_consent_withdrawn"  # a withdrawal always wins
    elif policy == "opt_in_only":
        assert (blocked is None) == subscribed
    elif policy == "regional" and country in consent.PRIOR_CONSENT_COUNTRIES:
        assert (blocked is None) == (subscribed or orders > 0)
        if blocked:
            assert blocked == f"no_email_consent_region_{country}"
    else:
        assert blocked is None


def test_examples_cover_many_regions() -> None:
    # the generator above really produces parseable numbers from most regions
    ok = [r for r in REGIONS if phonenumbers.example_number_for_type(r, phonenumbers.PhoneNumberType.MOBILE)]
    assert len(ok) > 200
    assert next_allowed(datetime(2026, 1, 1, 3, tzinfo=UTC), ["America/New_York"], Window.parse("08:00-21:00")) == \
        datetime(2026, 1, 1, 13, tzinfo=UTC) and timedelta(0) == timedelta(0)
