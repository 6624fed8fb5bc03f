"""Channels: the RFC 5322 message as sent, the local outbox (atomic, never twice) and the fake."""

from __future__ import annotations

import email
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from recovery.sending.channels import (
    FakeChannel,
    OutboundEmail,
    OutboundPush,
    OutboundSms,
    OutboxChannel,
    PermanentSendError,
    TransientSendError,
    build_email_message,
)
from recovery.messages.content import render_email, sample_context

# Signed tokens are longer than a header line: the case that used to turn into RFC 2047 words.
SIGNED = "WzEyMzQ1LDY3ODkwXQ.Zq3kLw.Qm9yaW5nLXNpZ25hdHVyZS1mb3ItdGVzdHMtb25seS0xMjM0NTY3ODkw"
UNSUBSCRIBE_URL = f"https://app.example.com/u/{SIGNED}"
MAILTO = f"mailto:unsubscribe+{SIGNED}@cartresq.example.com"


def outbound_email(**changes: object) -> OutboundEmail:
    m = OutboundEmail(
        message_id=7,
        cart_id=42,
        step=1,
        to="shopper@example.com",
        from_addr="reminders@cartresq.example.com",
        from_name="Lindenhof Ceramics",
        subject="Did you mean to leave these behind?",
        html='<p>Hi, your cart is saved: <a href="https://app.example.com/r/abc">Return to your cart</a></p>',
        text="Hi, your cart is saved: https://app.example.com/r/abc",
        unsubscribe_url=UNSUBSCRIBE_URL,
        unsubscribe_mailto=MAILTO,
        categories=("cart-recovery", "step-1"),
    )
    return replace(m, **changes)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)  # type: ignore[return-value]


def raw_header(raw: bytes, name: str) -> str:
    """The header exactly as written on the wire, unfolded but not decoded."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in head.replace("\r\n ", " ").replace("\r\n\t", " ").split("\r\n"):
        if field.lower().startswith(name.lower() + ":"):
            return field.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} header")


def test_email_parses_back_as_valid_mime_with_one_click_unsubscribe() -> None:
    # Given an outbound email / When built and written as bytes
    m = outbound_email(reply_to="help@lindenhof-ceramics.example.com")
    raw = build_email_message(m, message_domain="cartresq.example.com").as_bytes(policy=policy.SMTP)
    msg = parse(raw)
    # Then it is multipart/alternative, text first then HTML, both UTF-8 and intact
    assert not msg.defects and msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    # (the parser keeps the wire's CRLF line endings inside decoded bodies)
    bodies = [p.get_content().replace("\r\n", "\n").rstrip("\n") for p in parts]
    assert bodies == [m.text, m.html]
    # And it carries RFC 8058 one-click unsubscribe and the identifying headers
    assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>, <{MAILTO}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Message-ID"] == "<cartresq-7@cartresq.example.com>"
    assert msg["From"].addresses[0].display_name == "Lindenhof Ceramics"
    assert msg["From"].addresses[0].addr_spec == "reminders@cartresq.example.com"
    assert str(msg["To"]) == "shopper@example.com" and str(msg["Reply-To"]) == m.reply_to
    assert msg["Subject"] == m.subject
    assert (msg["X-CartResQ-Message-Id"], msg["X-CartResQ-Cart-Id"], msg["X-CartResQ-Step"]) == (
        "7",
        "42",
        "1",
    )
    sent_at = parsedate_to_datetime(msg["Date"])
    assert sent_at.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
    # And on the wire: CRLF line endings and List-Unsubscribe as bare <URI>s, never RFC 2047-encoded
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw_header(raw, "List-Unsubscribe") == f"<{UNSUBSCRIBE_URL}>, <{MAILTO}>"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_non_ascii_and_quoted_store_names_and_subjects_survive_encoding() -> None:
    # Given a non-ASCII store name and subject, and a name needing quotes
    for name in ("Café Zoë", 'Kaffee, Tee & "Mehr"'):
        m = outbound_email(from_name=name, subject="Noch unentschlossen, Zoë? Ihr Warenkorb – gespeichert")
        # When built / Then the headers are 7-bit on the wire and decode back to the same text
        raw = bytes(build_email_message(m, message_domain="cartresq.example.com"))
        raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # raises if any header byte is not 7-bit
        msg = parse(raw)
        assert msg["From"].addresses[0].display_name == name
        assert msg["From"].addresses[0].addr_spec == "reminders@cartresq.example.com"
        assert msg["Subject"] == m.subject
    assert "Café Zoë" not in raw_header(
        bytes(build_email_message(outbound_email(from_name="Café Zoë"), message_domain="x.example.com")),
        "From",
    )


def test_no_reply_to_unless_set_and_an_explicit_date() -> None:
    # Given no reply-to and a fixed send time / When built / Then no Reply-To and that exact Date
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    msg = build_email_message(outbound_email(), message_domain="cartresq.example.com", date=at)
    assert msg["Reply-To"] is None and msg["Date"] == "Wed, 02 Jan 2030 03:04:05 +0000"


@pytest.mark.parametrize(
    "changes",
    [
        {"to": "not an address"},
        {"to": "a@example.com, b@example.com"},
        {"subject": "hi\r\nBcc: x@example.com"},
        {"unsubscribe_url": "https://app.example.com/u/a b"},
    ],
)
def test_invalid_addresses_and_header_injection_are_refused(tmp_path: Path, changes: dict[str, str]) -> None:
    # Given a malformed recipient or header value
    m = outbound_email(**changes)
    # When built directly / Then ValueError; through the outbox / Then a permanent failure and no file
    with pytest.raises(ValueError):
        build_email_message(m, message_domain="cartresq.example.com")
    with pytest.raises(PermanentSendError):
        OutboxChannel(tmp_path).send(m)
    assert list(tmp_path.rglob("*")) == []


def test_outbox_email_file_is_the_message_as_sent(tmp_path: Path) -> None:
    # Given an email rendered from the sample cart
    rendered = render_email("gentle_reminder", sample_context())
    m = outbound_email(
        message_id=12, step=2, subject=rendered.subject, html=rendered.html, text=rendered.text
    )
    # When sent through the outbox
    result = OutboxChannel(tmp_path / "outbox", message_domain="cartresq.example.com").send(m)
    # Then exactly <id>-step<step>.eml exists and parses back with its HTML and headers
    path = tmp_path / "outbox" / "email" / "12-step2.eml"
    assert result.provider_message_id == "outbox:12-step2.eml"
    assert sorted(p.name for p in (tmp_path / "outbox").rglob("*")) == ["12-step2.eml", "email"]
    msg = parse(path.read_bytes())
    assert msg["Message-ID"] == "<cartresq-12@cartresq.example.com>"
    assert sample_context().restore_url in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_sms_and_push_files_have_exactly_the_contract_keys(tmp_path: Path) -> None:
    # Given an SMS and a web push message
    outbox = OutboxChannel(tmp_path)
    sms = OutboundSms(
        8, 42, 3, "+15555550123", "Lindenhof Ceramics: your cart is saved https://x.example.com/r/a"
    )
    push = OutboundPush(
        9,
        42,
        2,
        {"endpoint": "https://push.example.com/send/abc", "keys": {"p256dh": "k"}},
        "Your cart is saved",
        "Café Zoë kept it for you",
        "https://app.example.com/r/abc",
    )
    # When sent
    assert outbox.send(sms).provider_message_id == "outbox:8-step3.json"
    assert outbox.send(push).provider_message_id == "outbox:9-step2.json"
    # Then each JSON file has exactly the contract keys and values
    assert json.loads((tmp_path / "sms" / "8-step3.json").read_text("utf-8")) == {
        "to": "+15555550123",
        "body": sms.body,
        "cart_id": 42,
        "step": 3,
        "message_id": 8,
    }
    assert json.loads((tmp_path / "push" / "9-step2.json").read_text("utf-8")) == {
        "to": "https://push.example.com/send/abc",
        "title": "Your cart is saved",
        "body": "Café Zoë kept it for you",
        "url": "https://app.example.com/r/abc",
        "cart_id": 42,
        "step": 2,
        "message_id": 9,
    }
    # And a subscription without an endpoint is refused for good
    with pytest.raises(PermanentSendError, match="endpoint"):
        outbox.send(replace(push, message_id=10, subscription={}))


@pytest.mark.parametrize("kind", ["email", "sms", "push"])
def test_the_same_message_never_lands_twice(tmp_path: Path, kind: str) -> None:
    # Given one message already in the outbox
    first = {
        "email": outbound_email(),
        "sms": OutboundSms(7, 42, 1, "+15555550123", "first"),
        "push": OutboundPush(
            7, 42, 1, {"endpoint": "https://push.example.com/a"}, "t", "first", "https://x.example.com"
        ),
    }[kind]
    outbox = OutboxChannel(tmp_path)
    outbox.send(first)
    original = next((tmp_path / kind).iterdir()).read_bytes()
    # When the same message id is sent again with different content
    again = replace(first, subject="second") if kind == "email" else replace(first, body="second")  # type: ignore[type-var]
    with pytest.raises(PermanentSendError, match="already in outbox"):
        outbox.send(again)
    # Then one file remains, unchanged, and no temp file is left behind
    files = list((tmp_path / kind).iterdir())
    assert len(files) == 1 and files[0].read_bytes() == original


def test_a_send_racing_past_the_existence_check_still_cannot_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a message in the outbox, and a second sender that checked before the first one finished
    outbox = OutboxChannel(tmp_path)
    outbox.send(OutboundSms(7, 42, 1, "+15555550123", "first"))
    monkeypatch.setattr(Path, "exists", lambda self: False)  # the race: the early check saw nothing
    # When it publishes / Then it is refused, the original stays and its temp file is removed
    with pytest.raises(PermanentSendError, match="already in outbox"):
        outbox.send(OutboundSms(7, 42, 1, "+15555550123", "second"))
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "sms").iterdir()] == ["7-step1.json"]
    assert json.loads((tmp_path / "sms" / "7-step1.json").read_text())["body"] == "first"


def test_concurrent_sends_of_one_message_produce_one_file(tmp_path: Path) -> None:
    # Given eight workers sending the same message at the same instant
    outbox, barrier, outcomes = OutboxChannel(tmp_path), threading.Barrier(8), []

    def send() -> None:
        barrier.wait()
        try:
            outbox.send(outbound_email())
            outcomes.append("sent")
        except PermanentSendError:
            outcomes.append("refused")

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly one went out and nothing else is in the directory
    assert sorted(outcomes) == ["refused"] * 7 + ["sent"]
    assert [p.name for p in (tmp_path / "email").iterdir()] == ["7-step1.eml"]


def test_an_unwritable_outbox_is_a_transient_failure(tmp_path: Path) -> None:
    # Given an outbox path that is a file, not a directory / When sending / Then retry later
    (tmp_path / "outbox").write_text("not a directory")
    with pytest.raises(TransientSendError):
        OutboxChannel(tmp_path / "outbox").send(OutboundSms(1, 1, 1, "+15555550123", "hi"))


def test_fake_channel_records_and_fails_on_demand() -> None:
    # Given a fake channel
    fake = FakeChannel()
    sms = OutboundSms(1, 2, 1, "+15555550123", "hi")
    # When it sends / Then it records in order with distinct ids
    ids = [fake.send(sms).provider_message_id, fake.send(outbound_email()).provider_message_id]
    assert fake.sent == [sms, outbound_email()] and len(set(ids)) == 2
    # When told to fail / Then it raises that error and records nothing
    fake.fail_with = TransientSendError("provider timeout")
    with pytest.raises(TransientSendError, match="timeout"):
        fake.send(sms)
    assert len(fake.sent) == 2
    with pytest.raises(PermanentSendError):
        FakeChannel(fail_with=PermanentSendError("invalid address")).send(sms)


def test_fake_channel_records_every_send_from_many_threads() -> None:
    # Given eight threads sending 200 messages each through one fake (as worker threads do)
    fake = FakeChannel()
    ids: list[str] = []

    def worker(n: int) -> None:
        for i in range(200):
            ids.append(fake.send(OutboundSms(n * 1000 + i, 1, 1, "+15555550123", "hi")).provider_message_id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then every message is recorded once, each with its own id
    assert len(fake.sent) == 1600 and len(set(ids)) == 1600
