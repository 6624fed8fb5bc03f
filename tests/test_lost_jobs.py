"""The lost-job sweep tells lost from slow (issue 24): a row whose job is still in Redis (queued behind a
backlog, delayed for a retry) is left to that job; a row whose job is gone (Redis flushed) is enqueued again;
a dead letter never is. Real PostgreSQL and Redis (this test's own leased Redis db)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from sqlalchemy import select, update

from app import create_app
from app.broker_jobs import pending_ids
from app.dispatcher import run_once
from app.runtime import Runtime, build_runtime
from recovery.intake import deliveries as intake
from recovery.sending import dispatch
from recovery.storage import tables as t
from recovery.sending.send import SEND_ACTOR
from tests.conftest import add_store, drain, make_settings
from tests.loop_helpers import claim, now
from tests.support import shopify

AGE = timedelta(seconds=60)


@pytest.fixture
def rt(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(pg_url, tmp_path, redis_url=redis_url, intake_relay=False))
    add_store(runtime)
    yield runtime
    runtime.close()


def _flush(rt: Runtime) -> None:  # our leased db only (the redis_url fixture's)
    redis.Redis.from_url(rt.settings.redis_url).flushdb()


def _age_deliveries(rt: Runtime) -> None:
    with rt.sessions.begin() as session:
        for row in session.scalars(select(t.WebhookDelivery)):
            row.received_at, row.requeued_at = t.utcnow() - 2 * AGE, None


def _deliveries_held(rt: Runtime) -> set[int] | None:
    return pending_ids(rt.broker, (intake.PROCESS_ACTOR, intake.PROCESS_BATCH_ACTOR))


def test_a_delivery_waiting_in_redis_is_slow_not_lost(rt: Runtime) -> None:
    # Given a stored delivery whose job waits in Redis (no worker yet: a backlog) for longer than the sweep's age
    assert shopify.post(create_app(runtime=rt).test_client(), "checkouts_update").status_code == 200
    _age_deliveries(rt)
    [pk] = [d.id for d in _rows(rt, t.WebhookDelivery)]
    assert _deliveries_held(rt) == {pk}
    # When the sweep runs, it leaves it to its job (no second job for it)
    with rt.sessions.begin() as session:
        assert intake.requeue_unprocessed(session, AGE, held=lambda: _deliveries_held(rt)) == []
    assert rt.broker.client.hlen("dramatiq:intake.msgs") == 1
    # But when Redis loses it (flushed), the next sweep a minute later enqueues it again, and it is applied
    _flush(rt)
    _age_deliveries(rt)
    with rt.sessions.begin() as session:
        assert intake.requeue_unprocessed(session, AGE, held=lambda: _deliveries_held(rt)) == [pk]
    drain(rt)
    assert _rows(rt, t.WebhookDelivery)[0].processed_at is not None
    assert len(_rows(rt, t.Cart)) == 1


def test_a_dead_letter_is_never_swept_even_when_no_job_holds_it(rt: Runtime) -> None:
    assert shopify.post(create_app(runtime=rt).test_client(), "checkouts_update").status_code == 200
    _flush(rt)
    _age_deliveries(rt)
    with rt.sessions.begin() as session:
        session.execute(update(t.WebhookDelivery).values(processed_at=t.utcnow(), failed_at=t.utcnow(),
                                                          outcome="failed", attempts=5))
    with rt.sessions.begin() as session:
        assert intake.requeue_unprocessed(session, AGE, held=lambda: _deliveries_held(rt)) == []
    assert run_once(rt).deliveries == 0


def test_a_send_job_in_the_queue_or_in_a_retry_delay_is_slow_not_lost(rt: Runtime) -> None:
    # Given two messages claimed (status queued), for longer than the sweep's age
    at = now()
    with rt.sessions.begin() as session:
        store_id = session.scalar(select(t.Store.id))
        for n in (1, 2):
            cart = t.Cart(store_id=store_id, checkout_token=f"lost-job-{n}", email=f"shopper-{n}@example.com",
                          currency="USD", subtotal=Decimal("20.00"), total=Decimal("20.00"), line_items=[],
                          status="abandoned", source="webhook", platform_updated_at=at, last_activity_at=at)
            session.add(cart)
            session.flush()
            session.add(t.RecoveryMessage(store_id=store_id, cart_id=cart.id, step=1, channel="email",
                                          template="reminder", due_at=at))
    first, second = sorted(claim(rt, at))
    # One job waits in the queue; the other's is a retry delayed by Dramatiq (moved to the delay queue)
    _flush(rt)
    rt.broker.get_actor(SEND_ACTOR).send([first])
    rt.broker.get_actor(SEND_ACTOR).send_with_options(args=([second],), delay=3_600_000)
    assert pending_ids(rt.broker, (SEND_ACTOR,)) == {first, second}
    later = at + 2 * AGE
    with rt.sessions.begin() as session:
        assert dispatch.requeue_lost(session, later, AGE, held=lambda: pending_ids(rt.broker, (SEND_ACTOR,))) == []
        claimed = dict(session.execute(select(t.RecoveryMessage.id, t.RecoveryMessage.claimed_at)).all())
    assert claimed[first] == claimed[second] == later  # looked at: not again before another minute
    # When Redis loses both, the sweep after that minute enqueues both again
    _flush(rt)
    with rt.sessions.begin() as session:
        again = dispatch.requeue_lost(session, later + 2 * AGE, AGE, held=lambda: pending_ids(rt.broker, (SEND_ACTOR,)))
    assert sorted(again) == [first, second]
    assert pending_ids(rt.broker, (SEND_ACTOR,)) == {first, second}


def test_without_a_view_of_the_broker_the_sweep_goes_by_age(rt: Runtime) -> None:
    assert shopify.post(create_app(runtime=rt).test_client(), "checkouts_update").status_code == 200
    _age_deliveries(rt)
    with rt.sessions.begin() as session:
        assert len(intake.requeue_unprocessed(session, AGE, held=lambda: None)) == 1


def _rows(rt: Runtime, table: type) -> list:  # type: ignore[type-arg]
    with rt.sessions() as session:
        return list(session.scalars(select(table)))


def test_the_broker_heartbeat_timeout_is_the_operators_setting(tmp_path: Path) -> None:
    """How soon a killed worker's jobs come back (the sweep's Dramatiq maintenance uses the same figure)."""
    from app.runtime import build_broker
    from recovery.config.settings import Settings

    env = {"CARTRESQ_VAR_DIR": str(tmp_path), "REDIS_URL": "redis://127.0.0.1:6379/14"}
    assert build_broker(Settings.from_env(env)).heartbeat_timeout == 60_000
    broker = build_broker(Settings.from_env({**env, "CARTRESQ_BROKER_HEARTBEAT_TIMEOUT": "10"}))
    assert broker.heartbeat_timeout == 10_000
    for bad in ("0", "1", "7200"):
        with pytest.raises(ValueError, match="CARTRESQ_BROKER_HEARTBEAT_TIMEOUT"):
            Settings.from_env({**env, "CARTRESQ_BROKER_HEARTBEAT_TIMEOUT": bad})
