"""Twilio Messages API over real HTTP to a local server answering with Twilio's shapes."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from collections.abc import Iterator

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from recovery.sending.channels import OutboundSms, OutcomeUnknown, PermanentSendError, TransientSendError
from recovery.sending.channels.base import OUTCOME_UNKNOWN
from recovery.sending.channels.http import ProviderBusy
from recovery.sending.channels.twilio_sms import RecipientUnsubscribed, TwilioSmsChannel, to_e164
from tests.support.fake_http import FakeServer, answer, serve

SID, TOKEN = "AC00000000000000000000000000000001", "test-auth-token"
SMS = OutboundSms(
    message_id=9,
    cart_id=3,
    step=3,
    to="+1 (613) 555-0142",
    body="Your cart is waiting: https://x.example.com/r/t",
)


class Twilio:
    """Creates messages on POST (201, the Message resource) and lists them on GET, newest first."""

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    def create(self, request: Request) -> dict[str, object]:
        doc: dict[str, object] = {
            "sid": f"SM{uuid.uuid4().hex}",
            "status": "queued",
            "to": request.form.get("To"),
            "from": request.form.get("From"),
            "body": request.form.get("Body"),
            "date_created": format_datetime(datetime.now(UTC), usegmt=False),
        }
        self.messages.insert(0, doc)
        return doc

    def __call__(self, request: Request) -> Response:
        if request.method == "GET":
            found = [m for m in self.messages if m["to"] == request.args.get("To")]
            page = {"messages": found[: int(request.args.get("PageSize", 50))], "page": 0, "next_page_uri": None}
            return Response(json.dumps(page), status=200, mimetype="application/json")
        return Response(json.dumps(self.create(request)), status=201, mimetype="application/json")



def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    doc = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return answer(status, json.dumps(doc), headers=headers, mimetype="application/json")


@pytest.fixture
def twilio() -> Twilio:
    return Twilio()


@pytest.fixture
def server(twilio: Twilio) -> Iterator[FakeServer]:
    with serve(FakeServer(twilio)) as fake:
        yield fake


def channel(server: FakeServer, **kwargs: object) -> TwilioSmsChannel:
    options: dict[str, object] = {
        "from_number": "+15005550006",
        "status_callback": "https://app.example.com/sms/status",
    }
    options.update(kwargs)
    return TwilioSmsChannel(SID, TOKEN, base_url=server.url, **options)  # type: ignore[arg-type]


def test_posts_the_form_with_basic_auth_and_returns_the_sid(server: FakeServer, twilio: Twilio) -> None:
    result = channel(server).send(SMS)

    assert result.provider_message_id == twilio.messages[0]["sid"] and result.provider_message_id.startswith("SM")
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


def test_a_read_timeout_is_outcome_unknown_never_transient(server: FakeServer) -> None:
    server.script.append(1.0)  # Twilio got the whole request and answers too late
    unknown: list[int] = []
    with pytest.raises(OutcomeUnknown) as caught:
        channel(server, timeout=httpx.Timeout(0.2), on_outcome_unknown=unknown.append).send(SMS)
    assert str(caught.value) == OUTCOME_UNKNOWN
    assert not isinstance(caught.value, TransientSendError) and isinstance(caught.value, PermanentSendError)
    assert unknown == [SMS.message_id]
    # One POST, never repeated; one look-up in the Messages list, which did not show it yet.
    assert [(r.method, r.path.split("?")[0]) for r in server.requests] == [
        ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json"),
        ("GET", f"/2010-04-01/Accounts/{SID}/Messages.json"),
    ]
    assert "To=%2B16135550142" in server.requests[1].path


def test_a_read_timeout_after_twilio_created_it_finds_the_sid(server: FakeServer, twilio: Twilio) -> None:
    twilio.messages.append(  # an older text to the same number: not ours
        {"sid": "SMold", "to": "+16135550142", "body": SMS.body, "date_created": "Mon, 01 Jan 2024 10:00:00 +0000"}
    )

    def created_then_stalled(request: Request) -> Response:
        doc = twilio.create(request)
        time.sleep(1.0)
        return Response(json.dumps(doc), status=201, mimetype="application/json")

    server.script.append(created_then_stalled)
    unknown: list[int] = []
    result = channel(server, timeout=httpx.Timeout(0.3), on_outcome_unknown=unknown.append).send(SMS)
    assert result.provider_message_id == twilio.messages[0]["sid"] != "SMold"
    assert unknown == [] and [r.method for r in server.requests] == ["POST", "GET"]


def test_a_connection_that_never_opens_is_transient() -> None:
    dead = TwilioSmsChannel(SID, TOKEN, from_number="+15005550006", base_url="http://127.0.0.1:9")
    with pytest.raises(TransientSendError, match="connection failed"):
        dead.send(SMS)


def test_wrong_credentials_are_permanent(server: FakeServer) -> None:
    server.script.append(twilio_error(401, 20003, "Authenticate"))
    with pytest.raises(PermanentSendError, match="twilio 401: error 20003"):
        channel(server).send(SMS)
