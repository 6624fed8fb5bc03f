"""Provider callbacks through the real Flask app: SendGrid signed events, Twilio inbound and status, push capture."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from app import create_app
from app.web.providers import twilio_signature
from app.runtime import Runtime, build_runtime
from recovery.storage import tables as t
from recovery.sending.checks import Candidate, blocking_reasons
from recovery.storage.tables import utcnow
from tests.conftest import make_settings

APP_URL = "https://app.example.com"
TOKEN = "twilio-test-token"
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(
    SIGNING_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
PHONE = "+16135550142"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = make_settings(
        database_url,
        tmp_path,
        app_url=APP_URL,
        sendgrid_verification_key=PUBLIC_KEY,
        twilio_account_sid="AC00000000000000000000000000000001",
        twilio_auth_token=TOKEN,
        twilio_from="+15005550006",
    )
    runtime = build_runtime(settings)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def make_store(rt: Runtime, domain: str, name: str) -> int:
    with rt.sessions.begin() as session:
        store = t.Store(platform="shopify", domain=domain, name=name, settings={})
        session.add(store)
        session.flush()
        return store.id


def make_cart(
    rt: Runtime, store_id: int, *, email: str = "shopper@example.com", phone: str | None = PHONE
) -> int:
    now = utcnow()
    with rt.sessions.begin() as session:
        cart = t.Cart(
            store_id=store_id,
            email=email,
            phone=phone,
            currency="USD",
            subtotal=Decimal("10"),
            total=Decimal("10"),
            platform_updated_at=now,
            last_activity_at=now,
            status="abandoned",
            abandoned_at=now,
            accepts_sms=True,
            cart_token=f"tok-{email}-{store_id}",
        )
        session.add(cart)
        session.flush()
        return cart.id


def make_message(
    rt: Runtime,
    store_id: int,
    cart_id: int,
    step: int,
    channel: str,
    status: str = "sent",
    provider_id: str | None = None,
) -> int:
    now = utcnow()
    with rt.sessions.begin() as session:
        message = t.RecoveryMessage(
            store_id=store_id,
            cart_id=cart_id,
            step=step,
            channel=channel,
            template="gentle_reminder",
            due_at=now,
            status=status,
            sent_at=now if status == "sent" else None,
            provider_message_id=provider_id,
        )
        session.add(message)
        session.flush()
        return message.id


def message(rt: Runtime, message_id: int) -> t.RecoveryMessage:
    with rt.sessions() as session:
        found = session.get(t.RecoveryMessage, message_id)
        assert found is not None
        return found


def suppressions(rt: Runtime) -> list[tuple[int, str, str, str]]:
    with rt.sessions() as session:
        rows = session.scalars(select(t.Suppression).order_by(t.Suppression.id)).all()
        return [(r.store_id, r.channel, r.address, r.reason) for r in rows]


# --- SendGrid ------------------------------------------------------------------------------------------


def post_events(
    client,
    events: list[dict[str, object]],
    *,
    key=SIGNING_KEY,
    timestamp: str | None = None,  # type: ignore[no-untyped-def]
    signature: str | None = None,
):
    body = json.dumps(events).encode()
    timestamp = timestamp or str(int(time.time()))  # older than 10 minutes is refused
    if signature is None:
        signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature,
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }
    return client.post("/webhooks/sendgrid", data=body, headers=headers)


def event(
    kind: str, message_id: int | None, email: str = "shopper@example.com", **extra: object
) -> dict[str, object]:
    doc: dict[str, object] = {
        "email": email,
        "timestamp": 1764300000,
        "event": kind,
        "sg_event_id": f"ev-{kind}-{message_id}",
        "sg_message_id": "14c5d75ce93.filterdrecv-p3las1-5bf99c48d-2ms5x-21-5B1F8C9C-1.0",
        **extra,
    }
    if message_id is not None:
        doc |= {
            "message_id": str(message_id),
            "cart_id": "1",
            "step": "1",
        }  # our custom_args come back top-level
    return doc


@pytest.fixture
def sent_email(rt: Runtime) -> tuple[int, int, int]:
    store_id = make_store(rt, "maple-test.myshopify.com", "Maple & Co")
    cart_id = make_cart(rt, store_id)
    return store_id, cart_id, make_message(rt, store_id, cart_id, 1, "email", provider_id="14c5d75ce93")


def test_bad_or_missing_signature_is_401_and_writes_nothing(rt: Runtime, client, sent_email) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    events = [event("bounce", message_id, type="bounce", status="5.1.1")]
    other = ec.generate_private_key(ec.SECP256R1())
    assert post_events(client, events, key=other).status_code == 401
    assert post_events(client, events, signature="").status_code == 401
    assert post_events(client, events, signature="bm90IGEgc2lnbmF0dXJl").status_code == 401
    good = post_events(client, events)  # the same events, a tampered body: refused
    assert good.status_code == 200
    tampered = client.post(
        "/webhooks/sendgrid",
        data=json.dumps(events + events).encode(),
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQ" + "A" * 90,
            "X-Twilio-Email-Event-Webhook-Timestamp": "1",
        },
    )
    assert tampered.status_code == 401


@pytest.mark.parametrize("offset, ok", [(-590, True), (-610, False), (-86400, False), (240, True), (400, False)])
def test_a_signed_batch_older_than_10_minutes_is_refused(rt: Runtime, client, sent_email, offset: int, ok: bool) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    response = post_events(client, [event("spamreport", message_id)], timestamp=str(int(time.time()) + offset))
    assert response.status_code == (200 if ok else 401)
    assert len(suppressions(rt)) == (1 if ok else 0)


def test_unsigned_requests_are_refused_before_anything_is_written(rt: Runtime, client, sent_email) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    assert post_events(client, [event("spamreport", message_id)], signature="").status_code == 401
    assert suppressions(rt) == [] and message(rt, message_id).delivery_status is None


def test_delivered_then_bounce_updates_the_message_and_suppresses_idempotently(
    rt: Runtime, client, sent_email
) -> None:  # type: ignore[no-untyped-def]
    store_id, cart_id, message_id = sent_email
    pending = make_message(rt, store_id, cart_id, 2, "email", status="planned")
    batch = [
        event("delivered", message_id),
        event("bounce", message_id, type="bounce", status="5.1.1", reason="no such user"),
    ]
    for _ in range(2):  # SendGrid retries the same batch
        response = post_events(client, batch)
        assert response.status_code == 200 and response.get_json()["applied"] == 2
    row = message(rt, message_id)
    assert (row.status, row.delivery_status, row.delivery_error) == ("sent", "bounced", "bounce 5.1.1")
    assert suppressions(rt) == [(store_id, "email", "shopper@example.com", "bounced")]
    assert message(rt, pending).status == "cancelled"
    # A late "delivered" never downgrades the bounce.
    post_events(client, [event("delivered", message_id)])
    assert message(rt, message_id).delivery_status == "bounced"


def test_a_blocked_bounce_is_recorded_but_not_suppressed(rt: Runtime, client, sent_email) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    post_events(client, [event("bounce", message_id, type="blocked", status="4.7.1")])
    assert message(rt, message_id).delivery_status == "bounced" and suppressions(rt) == []


@pytest.mark.parametrize(
    ("kind", "extra", "reason"),
    [
        ("spamreport", {}, "spamreport"),
        ("unsubscribe", {}, "unsubscribed"),
        ("group_unsubscribe", {"asm_group_id": 77}, "unsubscribed"),
        ("dropped", {"reason": "Invalid"}, "dropped"),
        ("dropped", {"reason": "Bounced Address"}, "dropped"),
    ],
)
def test_events_that_suppress(
    rt: Runtime, client, sent_email, kind: str, extra: dict[str, object], reason: str
) -> None:  # type: ignore[no-untyped-def]
    store_id, _, message_id = sent_email
    assert (
        post_events(client, [event(kind, message_id, email="Shopper@Example.com", **extra)]).status_code
        == 200
    )
    assert suppressions(rt) == [(store_id, "email", "shopper@example.com", reason)]


def test_a_drop_for_other_reasons_does_not_suppress(rt: Runtime, client, sent_email) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    post_events(client, [event("dropped", message_id, reason="Exceeded sending quota")])
    assert message(rt, message_id).delivery_status == "dropped" and suppressions(rt) == []


def test_open_click_and_matching_by_sg_message_id(rt: Runtime, client, sent_email) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    response = post_events(
        client, [event("open", None), event("click", message_id, url="https://x.example.com")]
    )
    assert response.get_json() == {"applied": 2, "unmatched": 0, "ignored": 0}
    row = message(rt, message_id)
    assert row.opened_at is not None and row.clicked_at is not None


def test_an_event_for_another_address_or_unknown_message_changes_nothing(
    rt: Runtime, client, sent_email
) -> None:  # type: ignore[no-untyped-def]
    _, _, message_id = sent_email
    response = post_events(
        client,
        [
            event("spamreport", message_id, email="someone-else@example.com"),
            event("spamreport", 999_999, sg_message_id="unknown.filter"),
            event("deferred", message_id),  # a kind we do not act on
        ],
    )
    assert response.get_json() == {"applied": 0, "unmatched": 2, "ignored": 1}
    assert suppressions(rt) == []


def test_not_json_is_400(client) -> None:  # type: ignore[no-untyped-def]
    body = b"not json"
    timestamp = str(int(time.time()))
    signature = base64.b64encode(
        SIGNING_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    ).decode()
    response = client.post(
        "/webhooks/sendgrid",
        data=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        },
    )
    assert response.status_code == 400 and response.get_json()["detail"] == "body is not JSON"


# --- Twilio --------------------------------------------------------------------------------------------


def test_signature_matches_twilios_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert (
        twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
        == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    )


def twilio_post(client, path: str, form: dict[str, str], *, token: str = TOKEN):  # type: ignore[no-untyped-def]
    signature = twilio_signature(token, APP_URL + path, form)
    return client.post(
        path,
        data=urlencode(form),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )


def inbound(body: str, sender: str = PHONE) -> dict[str, str]:
    return {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": "AC00000000000000000000000000000001",
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }


@pytest.fixture
def texted(rt: Runtime) -> tuple[int, int, int]:
    store_id = make_store(rt, "maple-test.myshopify.com", "Maple & Co")
    cart_id = make_cart(rt, store_id)
    make_message(rt, store_id, cart_id, 3, "sms", provider_id="SM" + "a" * 32)
    return store_id, cart_id, make_message(rt, store_id, cart_id, 5, "sms", status="planned")


def test_inbound_with_a_bad_signature_is_401_and_changes_nothing(rt: Runtime, client, texted) -> None:  # type: ignore[no-untyped-def]
    assert twilio_post(client, "/sms/inbound", inbound("STOP"), token="wrong").status_code == 401
    assert client.post("/sms/inbound", data=inbound("STOP")).status_code == 401
    assert suppressions(rt) == []


@pytest.mark.parametrize(
    "word", ["STOP", " stop ", "Stopall", "UNSUBSCRIBE", "cancel", "End", "QUIT", "revoke", "OPTOUT"]
)
def test_stop_words_suppress_the_number_at_once_and_cancel_pending_sms(
    rt: Runtime, client, texted, word: str
) -> None:  # type: ignore[no-untyped-def]
    store_id, cart_id, pending = texted
    response = twilio_post(client, "/sms/inbound", inbound(word))
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert response.get_data(as_text=True).endswith("<Response></Response>")
    assert (store_id, "sms", PHONE, "sms stop") in suppressions(rt)
    assert message(rt, pending).status == "cancelled"
    with rt.sessions() as session:  # and the pre-send check blocks any later SMS to it
        cart = session.get(t.Cart, cart_id)
        later = t.RecoveryMessage(
            id=10_000, store_id=store_id, cart_id=cart_id, step=9, channel="sms", status="queued"
        )
        store = session.get(t.Store, store_id)
        assert blocking_reasons(session, [Candidate(later, cart, store)]) == {10_000: "address suppressed"}  # type: ignore[arg-type]


def test_start_restores_consent(rt: Runtime, client, texted) -> None:  # type: ignore[no-untyped-def]
    store_id, _, _ = texted
    with rt.sessions.begin() as session:
        session.add(t.Customer(store_id=store_id, phone=PHONE, sms_consent=True))
    twilio_post(client, "/sms/inbound", inbound("STOP"))
    with rt.sessions() as session:
        assert session.scalars(select(t.Customer.sms_consent_source)).one() == "sms_stop"
    assert twilio_post(client, "/sms/inbound", inbound(" Unstop")).status_code == 200
    assert suppressions(rt) == []
    with rt.sessions() as session:
        customer = session.scalars(select(t.Customer)).one()
        assert (customer.sms_consent, customer.sms_consent_source) == (True, "sms_start")


def test_help_answers_with_the_store_name(client, texted) -> None:  # type: ignore[no-untyped-def]
    response = twilio_post(client, "/sms/inbound", inbound("help"))
    assert response.get_data(as_text=True).endswith(
        "<Response><Message>Maple &amp; Co: cart reminders. Reply STOP to unsubscribe.</Message></Response>"
    )


def test_other_text_gets_an_empty_answer_and_changes_nothing(rt: Runtime, client, texted) -> None:  # type: ignore[no-untyped-def]
    response = twilio_post(client, "/sms/inbound", inbound("is this still on sale? stop by later"))
    assert response.get_data(as_text=True).endswith("<Response></Response>") and suppressions(rt) == []


def test_stop_applies_to_every_store_that_texted_the_number(rt: Runtime, client, texted) -> None:  # type: ignore[no-untyped-def]
    first, _, _ = texted
    second = make_store(rt, "birch-test.myshopify.com", "Birch")
    make_message(rt, second, make_cart(rt, second, email="s2@example.com"), 3, "sms")
    third = make_store(rt, "cedar-test.myshopify.com", "Cedar")
    make_cart(rt, third, email="s3@example.com", phone="+16135550199")  # another number
    twilio_post(client, "/sms/inbound", inbound("STOP"))
    assert {(s, a) for s, c, a, _ in suppressions(rt)} == {(first, PHONE), (second, PHONE)}


def test_status_callbacks_update_the_message(rt: Runtime, client, texted) -> None:  # type: ignore[no-untyped-def]
    store_id, _, _ = texted
    with rt.sessions() as session:
        sent_id = session.scalars(select(t.RecoveryMessage.id).where(t.RecoveryMessage.step == 3)).one()
    form = {
        "MessageSid": "SM" + "a" * 32,
        "MessageStatus": "sent",
        "AccountSid": "AC00000000000000000000000000000001",
    }
    assert twilio_post(client, "/sms/status", form).status_code == 204
    assert message(rt, sent_id).delivery_status is None  # intermediate statuses change nothing
    twilio_post(client, "/sms/status", {**form, "MessageStatus": "undelivered", "ErrorCode": "30003"})
    row = message(rt, sent_id)
    assert (row.delivery_status, row.delivery_error) == ("undelivered", "twilio error 30003")
    twilio_post(client, "/sms/status", {**form, "MessageStatus": "failed", "ErrorCode": "21610"})
    assert (store_id, "sms", PHONE, "twilio 21610") in suppressions(rt)
    assert (
        twilio_post(client, "/sms/status", {**form, "MessageStatus": "delivered"}, token="bad").status_code
        == 401
    )
    assert twilio_post(client, "/sms/status", {"MessageSid": "SMx"}).status_code == 400


# --- web push subscriptions ----------------------------------------------------------------------------

SUBSCRIPTION = {
    "endpoint": "https://fcm.googleapis.com/fcm/send/abc123",
    "expirationTime": None,
    "keys": {"p256dh": "B" + "x" * 86, "auth": "y" * 22},
}
ORIGIN = {"Origin": "https://maple-test.myshopify.com"}


def test_push_subscribe_stores_and_refreshes_one_row_per_endpoint(rt: Runtime, client) -> None:  # type: ignore[no-untyped-def]
    store_id = make_store(rt, "maple-test.myshopify.com", "Maple & Co")
    cart_id = make_cart(rt, store_id)
    doc = {
        "shop": "maple-test.myshopify.com",
        "sid": "s-1",
        "cart_token": "tok-shopper@example.com-" + str(store_id),
        "subscription": SUBSCRIPTION,
    }
    assert client.post("/push/subscribe", json=doc, headers=ORIGIN).status_code == 201
    renewed = {**doc, "subscription": {**SUBSCRIPTION, "keys": {"p256dh": "B" + "z" * 86, "auth": "w" * 22}}}
    assert client.post("/push/subscribe", json=renewed, headers=ORIGIN).status_code == 201
    with rt.sessions() as session:
        [row] = session.scalars(select(t.PushSubscription)).all()
        assert (row.store_id, row.cart_id, row.sid, row.keys["auth"]) == (store_id, cart_id, "s-1", "w" * 22)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subscription": {**SUBSCRIPTION, "endpoint": "http://push.example.com/x"}}, "subscription"),
        ({"subscription": {"endpoint": SUBSCRIPTION["endpoint"]}}, "subscription"),
        ({"shop": None}, "shop"),
    ],
)
def test_push_subscribe_refuses_bad_input_precisely(
    rt: Runtime, client, change: dict[str, object], field: str
) -> None:  # type: ignore[no-untyped-def]
    make_store(rt, "maple-test.myshopify.com", "Maple & Co")
    response = client.post(
        "/push/subscribe",
        json={"shop": "maple-test.myshopify.com", "subscription": SUBSCRIPTION, **change},
        headers=ORIGIN,
    )
    assert response.status_code == 400 and response.get_json()["error"].startswith(field)
    with rt.sessions() as session:
        assert session.scalars(select(t.PushSubscription)).all() == []


def test_push_subscribe_for_an_unknown_shop_is_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        "/push/subscribe", json={"shop": "nobody-test.myshopify.com", "subscription": SUBSCRIPTION}, headers=ORIGIN
    )
    assert response.status_code == 404


def test_callbacks_never_log_addresses_or_numbers(rt: Runtime, client, texted, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.DEBUG)
    store_id, cart_id, _ = texted
    email_id = make_message(rt, store_id, cart_id, 1, "email")
    twilio_post(client, "/sms/inbound", inbound("STOP"))
    twilio_post(client, "/sms/inbound", inbound("HELP"))
    post_events(client, [event("bounce", email_id, type="bounce", status="5.1.1")])
    assert len(suppressions(rt)) == 2
    assert PHONE not in caplog.text and PHONE[2:] not in caplog.text and "shopper@example.com" not in caplog.text
