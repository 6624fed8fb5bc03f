"""Property tests through the real loop (Flask endpoints, intake, planner, pre-send checks, sender).

Hypothesis drives random time zones, abandonment times and interleavings of time passing, one-click
unsubscribe, Twilio STOP and an order. Whatever happens, what the channels received must obey the rules:
no SMS outside 08:00-21:00 in the shopper's zone or after 48 h, nothing after an opt-out or a purchase,
at most one SMS and three emails per cart, and the shopper cap (one message per 16 h). SQLite only:
the PostgreSQL locking paths are covered by tests/test_policy_loop.py.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app import create_app
from app.web.providers import twilio_signature
from app.runtime import build_runtime
from recovery.storage import tables as t
from recovery.sending.channels import FakeChannel, OutboundEmail, OutboundSms, SendResult
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, send_at, set_store
from tests.support import shopify

APP_URL = "https://app.example.com"
TOKEN = "twilio-test-token"
PHONE = "+18285550147"  # the fixture's phone (Asheville, NC: no stricter state window)
ZONES = ["America/New_York", "America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney",
         "Pacific/Honolulu", "America/St_Johns", "Asia/Kolkata"]


class ClockedChannel(FakeChannel):
    """The fake provider, remembering when (by the loop's clock) each message reached it."""

    def __init__(self, clock: list[datetime]) -> None:
        super().__init__()
        self.clock, self.times = clock, []  # type: list[datetime]

    def send(self, message: Any) -> SendResult:
        result = super().send(message)
        self.times.append(self.clock[0])
        return result


events = st.lists(
    st.tuples(st.sampled_from(["tick", "tick", "tick", "unsubscribe", "stop", "order"]), st.integers(1, 30)),
    min_size=3, max_size=10,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.sampled_from(ZONES), start_minute=st.integers(0, 24 * 60 - 1), plan=events)
def test_whatever_happens_the_channels_only_see_lawful_messages(
    sqlite_template: Path, zone: str, start_minute: int, plan: list[tuple[str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "cartresq.db"
        shutil.copy(sqlite_template, db)
        clock = [datetime(2026, 12, 7, tzinfo=UTC) + timedelta(minutes=start_minute)]
        channel = ClockedChannel(clock)
        rt = build_runtime(
            make_settings(f"sqlite:///{db}", Path(tmp), app_url=APP_URL, twilio_auth_token=TOKEN),
            channels={"email": channel, "sms": channel, "push": channel}, seed=start_minute,
        )
        try:
            run(rt, channel, clock, zone, plan)
        finally:
            rt.close()


def run(rt: Any, channel: ClockedChannel, clock: list[datetime], zone: str, plan: list[tuple[str, int]]) -> None:
    client = create_app(runtime=rt).test_client()
    add_store(rt)
    set_store(rt, holdout_percent=0)
    shopify.post(client, "checkouts_update")
    drain(rt)
    with rt.sessions.begin() as session:
        session.scalars(select(t.Cart)).one().shopper_timezone = zone  # as the tracker reports it
    abandoned_at = clock[0]
    [cart_id] = abandon_all(rt, abandoned_at)
    stopped: dict[str, datetime] = {}
    for kind, hours in plan:
        if kind == "tick":
            for _ in range(hours):  # the dispatcher's pace: due messages go out within the hour
                clock[0] += HOUR
                send_at(rt, clock[0])
        elif kind == "unsubscribe" and "email" not in stopped:
            with rt.sessions() as session:
                first = session.scalars(select(t.RecoveryMessage).where(t.RecoveryMessage.channel == "email")).first()
            assert first is not None
            token = rt.sender.links.sign("unsubscribe", first.id, cart_id)
            response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 200
            stopped["email"] = clock[0]
        elif kind == "stop" and "sms" not in stopped:
            form = {"MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": PHONE,
                    "To": "+15005550006", "Body": " stop ", "NumMedia": "0"}
            response = client.post("/sms/inbound", data=urlencode(form), headers={
                "X-Twilio-Signature": twilio_signature(TOKEN, APP_URL + "/sms/inbound", form),
                "Content-Type": "application/x-www-form-urlencoded"})
            assert response.status_code == 200
            stopped["sms"] = clock[0]
        elif kind == "order" and "order" not in stopped:
            shopify.post(client, "orders_create")
            drain(rt)
            stopped["order"] = clock[0]
    check(channel, abandoned_at, zone, stopped)
    # Liveness, so the safety checks are not passed by sending nothing: 5 quiet hours bring the first email.
    open_until = min([stopped.get("email", clock[0]), stopped.get("order", clock[0]), clock[0]])
    if open_until - abandoned_at >= 5 * HOUR:
        assert any(isinstance(m, OutboundEmail) for m in channel.sent)


def check(channel: ClockedChannel, abandoned_at: datetime, zone: str, stopped: dict[str, datetime]) -> None:
    sent = list(zip(channel.times, channel.sent, strict=True))
    sms = [(at, m) for at, m in sent if isinstance(m, OutboundSms)]
    emails = [(at, m) for at, m in sent if isinstance(m, OutboundEmail)]
    assert len(sms) <= 1 and len(emails) <= 3
    for at, _ in sms:
        local = at.astimezone(ZoneInfo(zone))
        assert 8 <= local.hour < 21, f"SMS at {local:%H:%M} local"
        assert at - abandoned_at <= timedelta(hours=48, minutes=2)
        assert sent_before(at, stopped.get("sms"))
    for at, _ in emails:
        assert sent_before(at, stopped.get("email"))
    for at, _ in sent:
        assert sent_before(at, stopped.get("order"))
    times = sorted(at for at, _ in sent)
    assert all(b - a >= timedelta(hours=16) for a, b in zip(times, times[1:], strict=False))


def sent_before(at: datetime, stop: datetime | None) -> bool:
    # Sends happen only while the clock advances, so one stamped with the stop's own time came before it.
    return stop is None or at <= stop


def test_the_property_run_can_fail() -> None:
    # The checker is not vacuous: an SMS at 23:00 local, or two messages 2 h apart, are caught.
    channel = ClockedChannel([datetime(2026, 12, 7, tzinfo=UTC)])
    night = datetime(2026, 12, 8, 4, tzinfo=UTC)  # 23:00 in New York
    channel.sent, channel.times = [OutboundSms(message_id=1, cart_id=1, step=3, to=PHONE, body="x")], [night]
    try:
        check(channel, night - 10 * HOUR, "America/New_York", {})
    except AssertionError:
        pass
    else:
        raise AssertionError("a night-time SMS passed the check")
    email = make_email()
    channel.sent, channel.times = [email, email], [night - 12 * HOUR, night - 10 * HOUR]
    try:
        check(channel, night - 13 * HOUR, "America/New_York", {})
    except AssertionError:
        return
    raise AssertionError("two messages 2 h apart passed the check")


def make_email() -> OutboundEmail:
    fields = {f.name: None for f in dataclasses.fields(OutboundEmail)}
    return OutboundEmail(**fields)  # type: ignore[arg-type]
