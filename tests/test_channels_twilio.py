"""Twilio Messages API over real HTTP to a local server answering with Twilio's shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from recovery.channels import OutboundSms, PermanentSendError, TransientSendError
from recovery.channels.http import ProviderBusy
from recovery.channels.twilio_sms import RecipientUnsubscribed, TwilioSmsChannel, to_e164
from tests.support.fake_http import FakeServer, answer, serve

SID, TOKEN = "AC00000000000000000000000000000001", "test-auth-token"
SMS = OutboundSms(
    message_id=9,
    cart_id=3,
    step=3,
    to="+1 (613) 555-0142",
    body="Your cart is waiting: https://x.example.com/r/t",
)


def created(request: Request) -> Response:
    doc = {
        "sid": "SM0123456789abcdef0123456789abcdef",
        "status": "queued",
        "to": request.form.get("To"),
        "body": request.form.get("Body"),
    }
    return Response(json.dumps(doc), status=201, mimetype="application/json")


def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    doc = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return answer(status, json.dumps(doc), headers=headers, mimetype="application/json")


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with serve(FakeServer(created)) as fake:
        yield fake


def channel(server: FakeServer, **kwargs: object) -> TwilioSmsChannel:
    options: dict[str, object] = {
        "from_number": "+15005550006",
        "status_callback": "https://app.example.com/sms/status",
    }
    options.update(kwargs)
    return TwilioSmsChannel(SID, TOKEN, base_url=server.url, **options)  # type: ignore[arg-type]


def test_posts_the_form_with_basic_auth_and_returns_the_sid(server: FakeServer) -> None:
    result = channel(server).send(SMS)

    assert result.provider_message_id == "SM0123456789abcdef0123456789abcdef"
    [request] = server.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form == {
        "To": "+16135550142",  # normalized to E.164
        "From": "+15005550006",
        "Body": SMS.body,
        "StatusCallback": "https://app.example.com/sms/status",
    }


def test_a_messaging_service_replaces_from(server: FakeServer) -> None:
    channel(server, from_number=None, messaging_service_sid="MG0000000000000000000000000000000a").send(SMS)
    form = server.requests[0].form
    assert form["MessagingServiceSid"] == "MG0000000000000000000000000000000a" and "From" not in form


def test_e164() -> None:
    assert to_e164("+44 20 7946 0958") == "+442079460958"
    for bad in ("12", "not a number", "+1 555 0000 0000 0000"):
        with pytest.raises(ValueError):
            to_e164(bad)


def test_an_invalid_number_is_refused_before_any_request(server: FakeServer) -> None:
    with pytest.raises(PermanentSendError, match="not a"):
        channel(server).send(OutboundSms(1, 1, 3, "555-0142", "hi"))  # no country code: not E.164-able
    assert server.requests == []


def test_21211_is_permanent_without_the_number_in_the_reason(server: FakeServer) -> None:
    server.script.append(
        twilio_error(400, 21211, "The 'To' number +16135550142 is not a valid phone number.")
    )
    with pytest.raises(PermanentSendError) as caught:
        channel(server).send(SMS)
    assert str(caught.value) == "twilio 400: error 21211"


def test_21610_is_permanent_and_reported_for_suppression(server: FakeServer) -> None:
    reported: list[int] = []
    server.script.append(twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"))
    with pytest.raises(RecipientUnsubscribed):
        channel(server, on_unsubscribed=reported.append).send(SMS)
    assert reported == [9]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_transient(server: FakeServer, status: int) -> None:
    server.script.append(
        twilio_error(status, 20429 if status == 429 else 20500, "Too Many Requests", {"Retry-After": "3"})
    )
    with pytest.raises(ProviderBusy) as caught:
        channel(server).send(SMS)
    assert caught.value.retry_after == 3.0


def test_timeout_is_transient(server: FakeServer) -> None:
    server.script.append(1.0)
    with pytest.raises(TransientSendError, match="timed out"):
        channel(server, timeout=httpx.Timeout(0.2)).send(SMS)


def test_wrong_credentials_are_permanent(server: FakeServer) -> None:
    server.script.append(twilio_error(401, 20003, "Authenticate"))
    with pytest.raises(PermanentSendError, match="twilio 401: error 20003"):
        channel(server).send(SMS)
