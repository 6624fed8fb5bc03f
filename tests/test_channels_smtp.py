"""SMTP through a real local SMTP server (aiosmtpd in a thread) that records what it receives."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from recovery.sending.channels import OutboundEmail, PermanentSendError, TransientSendError
from recovery.sending.channels.smtp import SmtpChannel, SmtpConfig

EMAIL = OutboundEmail(
    message_id=41,
    cart_id=7,
    step=2,
    to="shopper@example.com",
    from_addr="reminders@cartresq.example.com",
    from_name="Maple & Co",
    subject="Still thinking it over?",
    html="<p>Your cart</p>",
    text="Your cart",
    unsubscribe_url="https://app.example.com/u/tok",
    unsubscribe_mailto="mailto:unsubscribe+tok@cartresq.example.com",
)


class Recorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.rcpt_reply: str | None = None  # e.g. "450 4.2.1 try later" or "550 5.1.1 no such user"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer",
        b"s3cret",
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    import socket

    with socket.socket() as probe:  # a free port: aiosmtpd's start() checks it by connecting to it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recorder = Recorder()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False
    )
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def test_url_forms() -> None:
    assert SmtpConfig.from_url("smtp://mailer:s%40cret@mail.example.com:2525") == SmtpConfig(
        "mail.example.com", 2525, "mailer", "s@cret"
    )
    assert SmtpConfig.from_url("smtps://u:p@mail.example.com").port == 465
    assert SmtpConfig.from_url("smtps://u:p@mail.example.com").implicit_tls
    starttls = SmtpConfig.from_url("smtp://u:p@mail.example.com?starttls=1")
    assert (starttls.port, starttls.starttls) == (587, True)
    with pytest.raises(ValueError):
        SmtpConfig.from_url("http://mail.example.com")


def test_sends_the_exact_mime_message_with_one_click_headers(smtp: tuple[Recorder, int]) -> None:
    recorder, port = smtp
    channel = SmtpChannel(
        SmtpConfig.from_url(f"smtp://mailer:s3cret@127.0.0.1:{port}"), message_domain="cartresq.example.com"
    )

    result = channel.send(EMAIL)

    [(mail_from, rcpt, raw)] = recorder.received
    assert (mail_from, rcpt) == ("reminders@cartresq.example.com", ["shopper@example.com"])
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert result.provider_message_id == msg["Message-ID"] == "<cartresq-41@cartresq.example.com>"
    assert (
        msg["List-Unsubscribe"]
        == "<https://app.example.com/u/tok>, <mailto:unsubscribe+tok@cartresq.example.com>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Subject"] == "Still thinking it over?"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["X-CartResQ-Message-Id"] == "41"


def test_4xx_reply_is_transient_and_5xx_permanent(smtp: tuple[Recorder, int]) -> None:
    recorder, port = smtp
    channel = SmtpChannel(SmtpConfig("127.0.0.1", port), message_domain="cartresq.example.com")
    recorder.rcpt_reply = "450 4.2.1 Mailbox busy, try later"
    with pytest.raises(TransientSendError, match="smtp 450"):
        channel.send(EMAIL)
    recorder.rcpt_reply = "550 5.1.1 No such user"
    with pytest.raises(PermanentSendError, match="smtp 550") as caught:
        channel.send(EMAIL)
    assert "shopper" not in str(caught.value)  # the reason never carries the address
    assert recorder.received == []


def test_unreachable_or_silent_server_is_transient() -> None:
    import socket

    with socket.socket() as silent:  # accepts the connection, never greets: the timeout must fire
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        channel = SmtpChannel(
            SmtpConfig("127.0.0.1", port), message_domain="cartresq.example.com", timeout=0.3
        )
        with pytest.raises(TransientSendError, match="smtp"):
            channel.send(EMAIL)
    refused = SmtpChannel(SmtpConfig("127.0.0.1", 9), message_domain="cartresq.example.com", timeout=0.3)
    with pytest.raises(TransientSendError):
        refused.send(EMAIL)
