"""Never a duplicate message: a read timeout (the request went out, no answer came) is not retried.

Through the real send actor and real HTTP fakes: SendGrid's read timeout → `sent`, delivery "unknown",
settled by the signed event webhook; a push service's read timeout → `failed` with the exact reason;
a connection that never opened → retried (nothing can have been sent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import httpx
import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, _outcome_unknown, build_runtime
from recovery.intake import subscriptions as push
from recovery.storage import tables as t
from recovery.sending.channels.base import OUTCOME_UNKNOWN
from recovery.sending.channels.sendgrid import SendGridChannel
from recovery.sending.channels.webpush import WebPushChannel
from recovery.sending.send import SEND_ACTOR
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, claim, daytime, messages, set_store
from tests.support import shopify
from tests.support.fake_http import FakeServer, answer, serve
from tests.support.push_service import VAPID_PRIVATE, PushService, https_push_service
from tests.test_provider_callbacks import PUBLIC_KEY, event, post_events

SHOPPER = "maren.holloway@example.com"  # the fixture checkout's address
SHORT_READ = httpx.Timeout(0.3, connect=2.0)


def run_job(rt: Runtime, ids: list[int]) -> None:
    rt.broker.get_actor(SEND_ACTOR).fn(ids)  # the send actor's own code, as a worker runs it


def first_step_claimed(rt: Runtime) -> int:
    client = create_app(runtime=rt).test_client()
    assert (
        shopify.post(client, "checkouts_update", payload=shopify.load("checkouts_update")).status_code == 200
    )
    drain(rt)
    base = daytime(10)
    abandon_all(rt, base)
    [claimed] = claim(rt, base + 5 * HOUR)
    return claimed


# --- SendGrid: counted as sent, the event webhook settles it -----------------------------------------


@pytest.fixture
def sendgrid() -> Iterator[FakeServer]:
    with serve(FakeServer(answer(202, headers={"X-Message-Id": "14c5d75ce93"}))) as fake:
        yield fake


@pytest.fixture
def sg_rt(database_url: str, tmp_path: Path, sendgrid: FakeServer) -> Iterator[Runtime]:
    settings = make_settings(
        database_url,
        tmp_path,
        sendgrid_api_key="SG.test",
        sendgrid_base_url=sendgrid.url,
        sendgrid_verification_key=PUBLIC_KEY,
    )
    runtime = build_runtime(settings, seed=3)
    # The runtime's own adapter and recorder, with a read timeout short enough for a test.
    channel = SendGridChannel(
        "SG.test",
        base_url=sendgrid.url,
        timeout=SHORT_READ,
        on_outcome_unknown=_outcome_unknown(runtime.sessions, events_will_tell=True),
    )
    runtime.sender = dataclasses.replace(
        runtime.sender, channels={**runtime.sender.channels, "email": channel}
    )
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


def test_a_sendgrid_read_timeout_is_sent_once_and_confirmed_by_its_events(
    sg_rt: Runtime, sendgrid: FakeServer
) -> None:
    message_id = first_step_claimed(sg_rt)
    sendgrid.script.append(1.0)  # SendGrid takes the request and answers after our read timeout

    run_job(sg_rt, [message_id])  # no dramatiq.Retry: nothing to try again
    row = messages(sg_rt)[0]
    assert (row.status, row.attempts, row.delivery_status) == ("sent", 1, "unknown")
    assert row.provider_message_id == f"sendgrid-unconfirmed:{message_id}" and row.sent_at is not None
    run_job(sg_rt, [message_id])
    assert len(sendgrid.requests) == 1  # one copy, ever

    client = create_app(runtime=sg_rt).test_client()
    assert post_events(client, [event("processed", message_id, email=SHOPPER)]).get_json()["applied"] == 1
    assert messages(sg_rt)[0].delivery_status == "processed"
    post_events(client, [event("delivered", message_id, email=SHOPPER)])
    post_events(client, [event("processed", message_id, email=SHOPPER)])  # late replay: no downgrade
    assert messages(sg_rt)[0].delivery_status == "delivered"


# --- web push: failed, outcome unknown; a connection that never opened is retried ---------------------


@pytest.fixture
def push_rt(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, FakeServer, PushService]]:
    with https_push_service(tmp_path) as (server, handler, bundle):
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        settings = make_settings(
            database_url, tmp_path, vapid_private_key=VAPID_PRIVATE, vapid_subject="ops@example.com",
            allow_private_hosts=True,  # the fake push service listens on this machine
        )
        runtime = build_runtime(settings, seed=3)
        channel = WebPushChannel(
            VAPID_PRIVATE,
            "ops@example.com",
            timeout=(2.0, 0.3),
            allow_private=True,
            on_outcome_unknown=_outcome_unknown(runtime.sessions, events_will_tell=False),
        )
        runtime.sender = dataclasses.replace(
            runtime.sender, channels={**runtime.sender.channels, "push": channel}
        )
        store_id = add_store(runtime)
        set_store(
            runtime,
            holdout_percent=0,
            sequence=[{"channel": "push", "template": "final_call", "delay": None}],
        )
        client = create_app(runtime=runtime).test_client()
        shopify.post(client, "checkouts_update", payload=shopify.load("checkouts_update"))
        drain(runtime)
        with runtime.sessions.begin() as session:
            cart_id = session.scalars(select(t.Cart.id)).one()
            sub = handler.subscribe(server.url, "slow")
            push.save_subscription(session, store_id, sub["endpoint"], sub["keys"], cart_id=cart_id)
        yield runtime, server, handler
        runtime.close()


def claim_push(rt: Runtime) -> int:
    base = daytime(10)
    abandon_all(rt, base)
    [claimed] = claim(rt, base + 5 * HOUR)
    return claimed


def test_a_push_read_timeout_fails_with_outcome_unknown_and_is_never_retried(
    push_rt: tuple[Runtime, FakeServer, PushService],
) -> None:
    rt, server, _ = push_rt
    message_id = claim_push(rt)
    server.script.append(1.0)

    run_job(rt, [message_id])  # no dramatiq.Retry
    row = messages(rt)[0]
    assert (row.channel, row.status, row.attempts) == ("push", "failed", 1)
    assert row.reason == OUTCOME_UNKNOWN == "outcome_unknown: provider timed out after accepting the request"
    run_job(rt, [message_id])
    assert len(server.requests) == 1


def test_a_push_service_that_cannot_be_reached_is_retried(
    push_rt: tuple[Runtime, FakeServer, PushService],
) -> None:
    rt, _, handler = push_rt
    with rt.sessions.begin() as session:  # the subscription now points at a port nobody listens on
        row = session.scalars(select(t.PushSubscription)).one()
        row.endpoint = "https://127.0.0.1:9/push/slow"
    message_id = claim_push(rt)

    with pytest.raises(dramatiq.Retry):
        run_job(rt, [message_id])
    row = messages(rt)[0]
    assert (row.status, row.attempts) == ("queued", 1)
    assert "push: connection failed" in (row.reason or "")
    assert handler.delivered == []
