"""SendGrid v3 mail send over real HTTP to a local server that answers like SendGrid."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from recovery.sending.channels import OutboundEmail, PermanentSendError, TransientSendError
from recovery.sending.channels.http import ProviderBusy
from recovery.sending.channels.sendgrid import SendGridChannel
from tests.support.fake_http import FakeServer, answer, serve

ACCEPTED = answer(202, headers={"X-Message-Id": "W-yfEYn1Q0K2lJcHDa8CfA"})


def sendgrid_error(
    status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None
):  # type: ignore[no-untyped-def]
    body = json.dumps({"errors": [{"message": message, "field": field, "help": None}]})
    return answer(status, body, headers=headers, mimetype="application/json")


EMAIL = OutboundEmail(
    message_id=41,
    cart_id=7,
    step=1,
    to="shopper@example.com",
    from_addr="reminders@cartresq.example.com",
    from_name="Maple & Co",
    subject="Did you mean to leave these behind?",
    html="<p>Your cart</p>",
    text="Your cart",
    unsubscribe_url="https://app.example.com/u/tok",
    unsubscribe_mailto="mailto:unsubscribe+tok@cartresq.example.com",
    reply_to="help@example.com",
    categories=("cart-recovery", "step-1"),
)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with serve(FakeServer(ACCEPTED)) as fake:
        yield fake


def channel(server: FakeServer, **kwargs: object) -> SendGridChannel:
    return SendGridChannel("SG.test-key", base_url=server.url, **kwargs)  # type: ignore[arg-type]


def test_sends_the_v3_body_and_returns_the_x_message_id(server: FakeServer) -> None:
    result = channel(server, asm_group_id=1234).send(EMAIL)

    assert result.provider_message_id == "W-yfEYn1Q0K2lJcHDa8CfA"
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v3/mail/send")
    assert request.headers["Authorization"] == "Bearer SG.test-key"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "personalizations": [{"to": [{"email": "shopper@example.com"}]}],
        "from": {"email": "reminders@cartresq.example.com", "name": "Maple & Co"},
        "reply_to": {"email": "help@example.com"},
        "subject": "Did you mean to leave these behind?",
        "content": [
            {"type": "text/plain", "value": "Your cart"},
            {"type": "text/html", "value": "<p>Your cart</p>"},
        ],
        "headers": {
            "List-Unsubscribe": "<https://app.example.com/u/tok>, <mailto:unsubscribe+tok@cartresq.example.com>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "categories": ["cart-recovery", "step-1"],
        "custom_args": {"message_id": "41", "cart_id": "7", "step": "1"},
        "asm": {"group_id": 1234},
    }


def test_an_account_email_carries_no_unsubscribe_headers_or_group(server: FakeServer) -> None:
    # Given a password reset to a merchant (transactional) / Then no one-click unsubscribe and no ASM group
    from dataclasses import replace

    reset = replace(EMAIL, transactional=True, unsubscribe_url="", unsubscribe_mailto="")
    channel(server, asm_group_id=1234).send(reset)
    body = json.loads(server.requests[0].body)
    assert "headers" not in body and "asm" not in body


def test_no_asm_without_a_group(server: FakeServer) -> None:
    channel(server).send(EMAIL)
    assert "asm" not in json.loads(server.requests[0].body)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_transient(server: FakeServer, status: int) -> None:
    server.script.append(sendgrid_error(status, "try later", headers={"Retry-After": "7"}))
    with pytest.raises(ProviderBusy) as caught:
        channel(server).send(EMAIL)
    assert f"sendgrid {status}" in str(caught.value)
    assert caught.value.retry_after == 7.0
    assert channel(server).send(EMAIL).provider_message_id  # the next attempt goes through


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "The from email does not contain a valid address."),
        (401, "The provided authorization grant is invalid, expired, or revoked"),
        (403, "access forbidden"),
        (413, "The JSON payload you have included in your request is too large."),
    ],
)
def test_client_errors_are_permanent_with_the_reason(server: FakeServer, status: int, message: str) -> None:
    server.script.append(sendgrid_error(status, message, field="from.email" if status == 400 else None))
    with pytest.raises(PermanentSendError) as caught:
        channel(server).send(EMAIL)
    assert not isinstance(caught.value, TransientSendError)
    assert str(caught.value).startswith(f"sendgrid {status}: {message}")


def test_a_read_timeout_counts_as_sent_unconfirmed_and_is_reported(server: FakeServer) -> None:
    """SendGrid had the whole request: no second copy; the event webhook settles it (test_channels_timeouts)."""
    server.script.append(1.0)  # answers only after a second
    unknown: list[int] = []
    slow = channel(server, timeout=httpx.Timeout(0.2, connect=0.2), on_outcome_unknown=unknown.append)
    result = slow.send(EMAIL)
    assert result.provider_message_id == f"sendgrid-unconfirmed:{EMAIL.message_id}"
    assert unknown == [EMAIL.message_id] and len(server.requests) == 1


def test_nothing_listening_is_transient() -> None:
    dead = SendGridChannel("SG.k", base_url="http://127.0.0.1:9", timeout=httpx.Timeout(0.5))
    with pytest.raises(TransientSendError, match="connection failed"):
        dead.send(EMAIL)


def test_an_invalid_address_is_refused_before_any_request(server: FakeServer) -> None:
    from dataclasses import replace

    with pytest.raises(PermanentSendError, match="not an email address"):
        channel(server).send(replace(EMAIL, to="shopper@example.com\r\nBcc: x@example.com"))
    assert server.requests == []
