"""A planned email goes out through the real Sender, the send actor and the SendGrid adapter, to a local
SendGrid; transient failures are retried with backoff and never duplicate; permanent ones are recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dramatiq
import pytest
from sqlalchemy import select

from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.sending import dispatch, retry
from recovery.storage import tables as t
from recovery.sending.channels.sendgrid import SendGridChannel
from recovery.sending.send import SEND_ACTOR
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import HOUR, abandon_all, claim, daytime, messages, now, set_store
from tests.support import shopify
from tests.support.fake_http import FakeServer, answer, serve

ACCEPTED = answer(202, headers={"X-Message-Id": "14c5d75ce93"})
UNAVAILABLE = answer(
    503,
    json.dumps({"errors": [{"message": "service unavailable", "field": None}]}),
    headers={"Retry-After": "90"},
)


@pytest.fixture
def sendgrid() -> Iterator[FakeServer]:
    with serve(FakeServer(ACCEPTED)) as fake:
        yield fake


@pytest.fixture
def rt(database_url: str, tmp_path: Path, sendgrid: FakeServer) -> Iterator[Runtime]:
    settings = make_settings(
        database_url,
        tmp_path,
        sendgrid_api_key="SG.test",
        sendgrid_base_url=sendgrid.url,
        sendgrid_asm_group_id=77,
    )
    runtime = build_runtime(settings, seed=3)
    add_store(runtime)
    set_store(runtime, holdout_percent=0)
    yield runtime
    runtime.close()


def first_email_claimed(rt: Runtime) -> int:
    client = create_app(runtime=rt).test_client()
    shopify.post(client, "checkouts_update", payload=shopify.load("checkouts_update"))
    drain(rt)
    base = daytime(10)
    abandon_all(rt, base)
    claimed = claim(rt, base + 5 * HOUR)
    assert len(claimed) == 1 and messages(rt)[0].channel == "email"
    return claimed[0]


def run_job(rt: Runtime, ids: list[int]) -> None:
    """The send actor's own code, as a worker would run it (Dramatiq's Retries middleware applies the delay)."""
    rt.broker.get_actor(SEND_ACTOR).fn(ids)


def test_the_runtime_selects_sendgrid_from_the_key(rt: Runtime) -> None:
    assert isinstance(rt.sender.channels["email"], SendGridChannel)


def test_a_planned_email_goes_out_through_sendgrid_once_despite_a_retry(
    rt: Runtime, sendgrid: FakeServer
) -> None:
    message_id = first_email_claimed(rt)
    sendgrid.script.append(UNAVAILABLE)

    # First attempt: SendGrid is down. The job asks Dramatiq for a retry 5-10 minutes later.
    with pytest.raises(dramatiq.Retry) as caught:
        run_job(rt, [message_id])
    assert 5 * 60_000 <= caught.value.delay <= 10 * 60_000
    row = messages(rt)[0]
    assert (row.status, row.attempts, row.sent_at) == ("queued", 1, None)
    assert "sendgrid 503: service unavailable" in (row.reason or "")
    # The lost-job sweep leaves it to the retry instead of resending it a minute later.
    assert row.claimed_at is not None and row.claimed_at > now() + timedelta(minutes=4)
    with rt.sessions.begin() as session:
        assert dispatch.requeue_lost(session, now() + timedelta(minutes=2), timedelta(seconds=60)) == []

    # The retry: SendGrid accepts it.
    run_job(rt, [message_id])
    row = messages(rt)[0]
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 2, "14c5d75ce93")

    # A duplicate job (Redis redelivery, the sweeper) never sends it again.
    run_job(rt, [message_id])
    assert rt.sender.send(rt.sessions, message_id) == "nothing to do"
    assert len(sendgrid.requests) == 2
    body = json.loads(sendgrid.requests[-1].body)
    with rt.sessions() as session:
        cart = session.get(t.Cart, row.cart_id)
        assert cart is not None
        assert body["personalizations"] == [{"to": [{"email": cart.email}]}]
    assert body["custom_args"] == {"message_id": str(message_id), "cart_id": str(row.cart_id), "step": "1"}
    assert body["asm"] == {"group_id": 77}
    assert (
        "/u/" in body["headers"]["List-Unsubscribe"] and body["headers"]["List-Unsubscribe"].count("<") == 2
    )
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]


def test_at_most_six_attempts_then_failed_with_the_reason(rt: Runtime, sendgrid: FakeServer) -> None:
    message_id = first_email_claimed(rt)
    sendgrid.default = UNAVAILABLE
    delays = []
    for _ in range(5):
        with pytest.raises(dramatiq.Retry) as caught:
            run_job(rt, [message_id])
        delays.append(caught.value.delay)
    run_job(rt, [message_id])  # the sixth failure: no retry asked for

    row = messages(rt)[0]
    assert (row.status, row.attempts, row.sent_at) == ("failed", 6, None)
    assert (row.reason or "").startswith("gave up after 6 attempts; last: provider unavailable: sendgrid 503")
    assert len(sendgrid.requests) == 6
    assert sum(delays) <= 6 * 3600_000 - 50 * 60_000  # the whole run ends well within six hours
    assert delays == sorted(delays)  # backing off
    run_job(rt, [message_id])
    assert len(sendgrid.requests) == 6


def test_a_permanent_refusal_is_never_retried(rt: Runtime, sendgrid: FakeServer) -> None:
    message_id = first_email_claimed(rt)
    sendgrid.script.append(
        answer(
            400, json.dumps({"errors": [{"message": "Invalid to email", "field": "personalizations.0.to"}]})
        )
    )
    run_job(rt, [message_id])  # no Retry raised
    row = messages(rt)[0]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.reason == "provider refused: sendgrid 400: Invalid to email (personalizations.0.to)"
    run_job(rt, [message_id])
    assert len(sendgrid.requests) == 1


def test_the_retry_policy_of_the_actor() -> None:
    assert retry.next_delay(1, rng=None) >= retry.MIN_BACKOFF_MS
    assert retry.next_delay(5, retry_after=10_000) <= retry.MAX_BACKOFF_MS  # a huge Retry-After is bounded
    assert retry.next_delay(1, retry_after=1200) >= 1_200_000  # Retry-After is a floor


def test_the_actor_retries_only_transient_failures(rt: Runtime) -> None:
    retry_when = rt.broker.get_actor(SEND_ACTOR).options["retry_when"]
    assert retry_when(0, dramatiq.Retry("x", delay=1)) and retry_when(4, dramatiq.Retry("x", delay=1))
    assert not retry_when(5, dramatiq.Retry("x", delay=1))
    assert not retry_when(0, RuntimeError("bug"))
    with rt.sessions() as session:
        assert session.scalars(select(t.RecoveryMessage)).all() == []
