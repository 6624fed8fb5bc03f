"""Web push through pywebpush to a local push service that checks VAPID and decrypts the payload."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.wrappers import Request, Response

from app.runtime import build_channels
from recovery.intake import subscriptions as push
from recovery.storage import tables as t
from recovery.sending.channels import OutboundPush, OutcomeUnknown, PermanentSendError, TransientSendError
from recovery.sending.channels.http import ProviderBusy
from recovery.sending.channels.webpush import SubscriptionGone, WebPushChannel
from recovery.storage.db import make_engine, make_sessionmaker
from tests.conftest import make_settings
from tests.support.fake_http import FakeServer, answer, serve


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


VAPID_KEY = ec.generate_private_key(ec.SECP256R1())
VAPID_PRIVATE = b64url(VAPID_KEY.private_numbers().private_value.to_bytes(32, "big"))
BROWSER_KEY = ec.generate_private_key(ec.SECP256R1())  # the browser's subscription key pair
AUTH = os.urandom(16)
KEYS = {
    "p256dh": b64url(
        BROWSER_KEY.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    ),
    "auth": b64url(AUTH),
}


class PushService:
    """Accepts what a real push service accepts: aes128gcm body, VAPID Authorization, TTL."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, str]] = []

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Content-Encoding") != "aes128gcm" or "TTL" not in request.headers:
            return Response("bad request", status=400)
        if not request.headers.get("Authorization", "").startswith("vapid t="):
            return Response("unauthorized", status=401)
        clear = http_ece.decrypt(
            request.get_data(), private_key=BROWSER_KEY, auth_secret=AUTH, version="aes128gcm"
        )
        self.payloads.append(json.loads(clear))
        return Response(status=201, headers={"Location": f"{request.host_url}m/1"})


@pytest.fixture
def service() -> Iterator[tuple[FakeServer, PushService]]:
    handler = PushService()
    with serve(FakeServer(handler)) as fake:
        yield fake, handler


def message(endpoint: str) -> OutboundPush:
    return OutboundPush(
        5,
        2,
        4,
        {"endpoint": endpoint, "keys": KEYS},
        "Your cart",
        "Still there for you",
        "https://x.example.com/r/t",
    )


def test_delivers_an_encrypted_vapid_signed_notification(service: tuple[FakeServer, PushService]) -> None:
    server, handler = service
    result = WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True).send(message(f"{server.url}/push/abc"))

    assert handler.payloads == [
        {"title": "Your cart", "body": "Still there for you", "url": "https://x.example.com/r/t"}
    ]
    assert result.provider_message_id.endswith("/m/1")
    assert server.requests[0].headers["Ttl"] == str(12 * 3600)


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_permanent_and_reported(
    service: tuple[FakeServer, PushService], status: int
) -> None:
    server, _ = service
    server.script.append(answer(status, "push subscription has unsubscribed or expired."))
    gone: list[str] = []
    with pytest.raises(SubscriptionGone):
        WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True, on_gone=gone.append).send(
            message(f"{server.url}/push/abc")
        )
    assert gone == [f"{server.url}/push/abc"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_transient(
    service: tuple[FakeServer, PushService], status: int
) -> None:
    server, _ = service
    server.script.append(answer(status, "busy", headers={"Retry-After": "11"}))
    with pytest.raises(ProviderBusy) as caught:
        WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True).send(message(f"{server.url}/push/abc"))
    assert caught.value.retry_after == 11.0


def test_a_read_timeout_is_outcome_unknown(service: tuple[FakeServer, PushService]) -> None:
    server, _ = service
    server.script.append(1.0)
    unknown: list[int] = []
    channel = WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True, timeout=(0.2, 0.2), on_outcome_unknown=unknown.append)
    with pytest.raises(OutcomeUnknown):
        channel.send(message(f"{server.url}/push/abc"))
    assert unknown == [5]


def test_nothing_listening_is_transient() -> None:
    with pytest.raises(TransientSendError, match="connection failed"):
        WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True, timeout=(0.5, 0.5)).send(message("http://127.0.0.1:9/p"))


def test_the_topic_header_lets_a_later_reminder_replace_an_unfetched_one(
    service: tuple[FakeServer, PushService],
) -> None:
    server, _ = service
    WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True).send(message(f"{server.url}/push/abc"))
    assert server.requests[0].headers["Topic"] == "cart-2"


def test_other_client_errors_and_bad_subscriptions_are_permanent(
    service: tuple[FakeServer, PushService],
) -> None:
    server, _ = service
    server.script.append(answer(413, "payload too large"))
    channel = WebPushChannel(VAPID_PRIVATE, "ops@example.com", allow_private=True)
    with pytest.raises(PermanentSendError, match="push 413"):
        channel.send(message(f"{server.url}/push/abc"))
    with pytest.raises(PermanentSendError, match="no https endpoint"):
        channel.send(message("ftp://push.example.com/x"))
    with pytest.raises(PermanentSendError, match="no keys"):
        channel.send(
            OutboundPush(5, 2, 4, {"endpoint": f"{server.url}/p"}, "t", "b", "https://x.example.com")
        )


def test_runtime_deletes_the_subscription_on_410(
    sqlite_url: str, tmp_path: Path, service: tuple[FakeServer, PushService]
) -> None:
    server, _ = service
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    endpoint = f"{server.url}/push/gone"
    with sessions.begin() as session:
        store = t.Store(platform="shopify", domain="maple-test.myshopify.com", settings={})
        session.add(store)
        session.flush()
        push.save_subscription(session, store.id, endpoint, KEYS, sid="s1")
        push.save_subscription(session, store.id, f"{server.url}/push/kept", KEYS, sid="s2")
    settings = make_settings(
        sqlite_url, tmp_path, vapid_private_key=VAPID_PRIVATE, vapid_subject="ops@example.com",
        allow_private_hosts=True,  # the fake push service listens on 127.0.0.1
    )
    channel = build_channels(settings, sessions)["push"]
    server.script.append(answer(410, "gone"))

    with pytest.raises(SubscriptionGone):
        channel.send(message(endpoint))

    with sessions() as session:
        assert [s.endpoint for s in session.query(t.PushSubscription)] == [f"{server.url}/push/kept"]
    engine.dispose()
