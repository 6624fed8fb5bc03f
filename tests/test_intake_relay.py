"""Relay mode: the web process only stores a webhook; the dispatcher's relay hands it to the workers in batches."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq import Message
from sqlalchemy import select

from app import create_app
from app.dispatcher import run_forever
from app.runtime import Runtime, build_runtime
from recovery.intake import deliveries as intake
from recovery.storage import tables as t
from recovery.config.settings import Settings
from tests.conftest import add_store, drain, make_settings
from tests.support import shopify


@pytest.fixture
def relay_runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(database_url, tmp_path, intake_relay=True))
    yield rt
    rt.close()


def queued(rt: Runtime) -> list[tuple[str, list]]:
    """(actor, args) of the jobs waiting on the in-process broker's intake queue."""
    queue = rt.broker.queues.get("intake")
    messages = [Message.decode(raw) for raw in (list(queue.queue) if queue is not None else [])]
    return [(m.actor_name, list(m.args)) for m in messages]


def carts(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        return sorted(session.scalars(select(t.Cart.checkout_token)))


def test_the_relay_hands_stored_deliveries_to_the_workers_once_in_one_batch(relay_runtime: Runtime) -> None:
    # Given relay mode and a store
    rt = relay_runtime
    add_store(rt)
    client = create_app(runtime=rt).test_client()
    # When Shopify delivers two checkouts (and one of them twice)
    create = shopify.post(client, "checkouts_create", webhook_id="relay-a")
    again = shopify.post(client, "checkouts_create", webhook_id="relay-a")
    update = shopify.post(client, "checkouts_update", webhook_id="relay-b")
    # Then each is acknowledged and stored, and the web process enqueued nothing
    assert [r.json["status"] for r in (create, again, update)] == ["accepted", "duplicate", "accepted"]
    assert queued(rt) == []
    # When the relay runs, one job carries both deliveries; a second pass finds nothing new
    assert intake.any_new(rt.engine)
    with rt.sessions.begin() as session:
        relayed = intake.relay_new(session)
    with rt.sessions.begin() as session:
        assert intake.relay_new(session) == []
    assert len(relayed) == 2
    # (the idle probe, on PostgreSQL, now says so too; elsewhere the relay pass itself finds out)
    assert intake.any_new(rt.engine) is (rt.engine.dialect.name != "postgresql")
    assert queued(rt) == [(intake.PROCESS_BATCH_ACTOR, [relayed])]
    # And a worker applies both, each once
    drain(rt)
    assert carts(rt) == sorted({shopify.load(n)["token"] for n in ("checkouts_create", "checkouts_update")})
    with rt.sessions() as session:
        rows = session.scalars(select(t.WebhookDelivery)).all()
    assert all(row.processed_at is not None and row.requeued_at is not None for row in rows)


def test_relay_jobs_carry_at_most_a_batch_of_ids(relay_runtime: Runtime) -> None:
    rt = relay_runtime
    store_id = add_store(rt)
    with rt.sessions.begin() as session:
        session.add_all(
            t.WebhookDelivery(platform="shopify", shop=shopify.SHOP, store_id=store_id, topic="checkouts/update",
                              delivery_id=f"d{i}", payload={})
            for i in range(intake.BATCH + 3)
        )  # fmt: skip
    with rt.sessions.begin() as session:
        relayed = intake.relay_new(session)
    assert [len(args[0]) for _, args in queued(rt)] == [intake.BATCH, 3]
    assert sorted(pk for _, args in queued(rt) for pk in args[0]) == relayed


def test_the_dispatcher_runs_the_relay_in_relay_mode(relay_runtime: Runtime) -> None:
    # Given a dispatcher running in relay mode
    rt = relay_runtime
    add_store(rt)
    client = create_app(runtime=rt).test_client()
    stop = threading.Event()
    thread = threading.Thread(target=run_forever, args=(rt, 0.05, stop), daemon=True)
    thread.start()
    try:
        # When a webhook is stored, a job for it appears without anything else being called
        shopify.post(client, "checkouts_create")
        for _ in range(100):
            if queued(rt):
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert [actor for actor, _ in queued(rt)] == [intake.PROCESS_BATCH_ACTOR]


def test_two_relays_never_take_the_same_delivery(pg_url: str, tmp_path: Path) -> None:
    # Given three stored deliveries on PostgreSQL
    rt = build_runtime(make_settings(pg_url, tmp_path, intake_relay=True))
    try:
        store_id = add_store(rt)
        with rt.sessions.begin() as session:
            session.add_all(
                t.WebhookDelivery(platform="shopify", shop=shopify.SHOP, store_id=store_id, topic="checkouts/update",
                                  delivery_id=f"two-{i}", payload={})
                for i in range(3)
            )  # fmt: skip
        # When one relay holds two of them in its open transaction, a second relay at the same time
        first, second = rt.sessions(), rt.sessions()
        try:
            taken_first = intake.relay_new(first, limit=2)
            taken_second = intake.relay_new(second)
            second.commit()
            first.commit()
        finally:
            first.close()
            second.close()
        # Then it takes only the third, and nothing is left for a later pass
        assert len(taken_first) == 2 and len(taken_second) == 1
        assert not set(taken_first) & set(taken_second)
        with rt.sessions.begin() as session:
            assert intake.relay_new(session) == []
    finally:
        rt.close()


@pytest.mark.parametrize(
    ("env", "relay"),
    [
        ({"DATABASE_URL": "postgresql://db.example.com/cartresq", "REDIS_URL": "redis://r.example.com"}, True),
        ({"DATABASE_URL": "postgresql://db.example.com/cartresq"}, False),
        ({"REDIS_URL": "redis://r.example.com"}, False),  # SQLite
        ({"DATABASE_URL": "postgresql://db.example.com/c", "REDIS_URL": "redis://r", "CARTRESQ_INTAKE_RELAY": "off"}, False),
        ({"CARTRESQ_INTAKE_RELAY": "on"}, True),
    ],
)
def test_relay_mode_is_on_by_default_only_with_postgresql_and_redis(env: dict[str, str], relay: bool, tmp_path: Path) -> None:
    assert Settings.from_env({"CARTRESQ_VAR_DIR": str(tmp_path), **env}).intake_relay is relay


def test_an_unknown_relay_mode_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CARTRESQ_INTAKE_RELAY"):
        Settings.from_env({"CARTRESQ_VAR_DIR": str(tmp_path), "CARTRESQ_INTAKE_RELAY": "sometimes"})


def test_a_delivery_that_fails_in_a_batch_goes_on_alone_and_the_others_are_applied(pg_url: str, tmp_path: Path) -> None:
    # A fault the database itself raises (no patching of our code): carts refuses one checkout token
    rt = build_runtime(make_settings(pg_url, tmp_path, intake_relay=True))
    bad, good = "0b" * 16, "9d" * 16
    with rt.engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse_cart() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.checkout_token = '{bad}' THEN RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$"
        )
        conn.exec_driver_sql("CREATE TRIGGER refuse_cart BEFORE INSERT OR UPDATE ON carts "
                             "FOR EACH ROW EXECUTE FUNCTION refuse_cart()")  # fmt: skip
    try:
        add_store(rt)
        client = create_app(runtime=rt).test_client()
        for token in (bad, good):
            payload = {**shopify.load("checkouts_create"), "token": token, "cart_token": f"c-{token}"}
            assert shopify.post(client, "checkouts_create", payload=payload, webhook_id=token).status_code == 200
        with rt.sessions.begin() as session:
            first, second = intake.relay_new(session)
        [(actor, [batch])] = queued(rt)
        assert actor == intake.PROCESS_BATCH_ACTOR and batch == [first, second]
        # When a worker runs that one batch job
        rt.broker.flush_all()
        rt.broker.get_actor(intake.PROCESS_BATCH_ACTOR).fn(batch)
        # Then the good delivery is applied, and the failed one is queued on its own, with its own retries
        assert carts(rt) == [good]
        assert queued(rt) == [(intake.PROCESS_ACTOR, [first])]
        with rt.sessions() as session:
            pending = session.scalars(select(t.WebhookDelivery.id).where(t.WebhookDelivery.processed_at.is_(None)))
            assert list(pending) == [first]
        # And once the fault is gone, that job applies it
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER refuse_cart ON carts")
        drain(rt)
        assert carts(rt) == sorted([bad, good])
    finally:
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS refuse_cart ON carts")
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS refuse_cart()")
        rt.close()
