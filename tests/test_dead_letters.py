"""Poison deliveries are visible and bounded: values no column can hold are rejected with a reason (never
retried), a delivery that keeps failing ends `failed` with its error after MAX_ATTEMPTS, the sweep leaves
dead letters alone, and the store's status page shows them with a retry. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import connectors
from app import create_app
from app.runtime import Runtime, build_runtime
from recovery.intake import deadletters, deliveries as intake
from recovery.storage import tables as t
from tests.conftest import add_store, drain, make_settings
from tests.support import shopify

TOKEN = "operator-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = build_runtime(make_settings(database_url, tmp_path, admin_token=TOKEN))
    add_store(runtime)
    yield runtime
    runtime.close()


@pytest.fixture
def client(rt: Runtime):  # type: ignore[no-untyped-def]
    return create_app(runtime=rt).test_client()


def deliveries(rt: Runtime) -> list[t.WebhookDelivery]:
    with rt.sessions() as session:
        return list(session.scalars(select(t.WebhookDelivery).order_by(t.WebhookDelivery.id)))


POISON = {
    "a 300-character token": ({"token": "t" * 300}, "checkout_token: longer than 255 characters"),
    "a 400-character email": ({"email": "e" * 388 + "@example.com"}, "email: longer than 320 characters"),
    "a 42-digit phone": ({"phone": "+" + "4" * 42, "sms_marketing_phone": "+" + "4" * 42}, "phone: longer than 32"),
    "a total of 1e400": ({"total_price": "1e400"}, "total: amount out of range"),
    "a date in the year 9999": ({"updated_at": "9999-12-31T23:59:59+14:00"}, "updated_at: time out of range"),
}


@pytest.mark.parametrize("poison", list(POISON))
def test_values_no_column_can_hold_are_rejected_with_a_reason_and_never_retried(rt: Runtime, client, poison: str) -> None:
    changes, reason = POISON[poison]
    payload = {**shopify.load("checkouts_update"), **changes}
    assert shopify.post(client, "checkouts_update", payload=payload).status_code == 200
    drain(rt)
    [delivery] = deliveries(rt)
    assert delivery.processed_at is not None and delivery.outcome == "rejected"
    assert delivery.error is not None and reason in delivery.error
    assert delivery.attempts == 0  # rejected at the first try: nothing to retry
    with rt.sessions() as session:
        assert session.scalars(select(t.Cart)).all() == []  # no half-written cart
    with rt.sessions.begin() as session:
        assert intake.requeue_unprocessed(session, timedelta(0)) == []
    page = client.get("/ops/stores/velvet-fern.myshopify.com", headers={**AUTH, "Accept": "application/json"})
    assert [d["error"] for d in page.get_json()["dead_letters"]] == [delivery.error]


def test_free_text_too_long_for_its_column_is_truncated(rt: Runtime, client) -> None:
    payload = shopify.load("checkouts_update")
    payload["customer"] = {**payload.get("customer", {}), "first_name": "M" * 400}
    payload["billing_address"] = {**(payload.get("billing_address") or {}), "first_name": "M" * 400}
    payload["shipping_address"] = {**(payload.get("shipping_address") or {}), "first_name": "M" * 400}
    shopify.post(client, "checkouts_update", payload=payload)
    drain(rt)
    [delivery] = deliveries(rt)
    assert delivery.error is None and delivery.processed_at is not None
    with rt.sessions() as session:
        [cart] = session.scalars(select(t.Cart)).all()
    assert cart.first_name == "M" * 255


def failing_normalize(*args: Any) -> Any:
    raise RuntimeError("a bug in a connector")


def test_a_delivery_that_keeps_failing_ends_failed_and_the_sweep_leaves_it(rt: Runtime, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shopify.post(client, "checkouts_update")
    [delivery] = deliveries(rt)
    job = rt.broker.get_actor(intake.PROCESS_ACTOR).fn
    monkeypatch.setattr(connectors, "normalize", failing_normalize)
    for attempt in range(1, deadletters.MAX_ATTEMPTS):
        with pytest.raises(RuntimeError):
            job(delivery.id)  # Dramatiq retries these
        assert (deliveries(rt)[0].attempts, deliveries(rt)[0].failed_at) == (attempt, None)
    job(delivery.id)  # the last attempt: dead, no exception, so no more retries
    [dead] = deliveries(rt)
    assert dead.failed_at is not None and dead.processed_at is not None
    assert (dead.attempts, dead.outcome, dead.error) == (deadletters.MAX_ATTEMPTS, "failed", "RuntimeError")
    with rt.sessions.begin() as session:
        assert intake.requeue_unprocessed(session, timedelta(0)) == []
    # The status page shows it; its retry runs it again once the connector is fixed.
    assert client.get("/ops/stores/velvet-fern.myshopify.com").status_code == 401
    page = client.get("/ops/stores/velvet-fern.myshopify.com", headers=AUTH)
    assert page.status_code == 200 and b"RuntimeError" in page.data and b"Retry" in page.data
    monkeypatch.undo()
    url = f"/ops/stores/velvet-fern.myshopify.com/deliveries/{dead.id}/retry"
    assert client.post(url).status_code == 401
    assert client.post(url, headers=AUTH).status_code == 202
    drain(rt)
    [done] = deliveries(rt)
    assert done.processed_at is not None and done.failed_at is None and done.outcome == "cart created"
    assert client.post(url, headers=AUTH).status_code == 404  # no longer a dead letter


def test_an_outage_is_retried_without_counting_against_the_delivery(rt: Runtime, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shopify.post(client, "checkouts_update")
    [delivery] = deliveries(rt)

    def outage(*args: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(connectors, "normalize", outage)
    job = rt.broker.get_actor(intake.PROCESS_ACTOR).fn
    for _ in range(deadletters.MAX_ATTEMPTS + 1):
        with pytest.raises(OperationalError):
            job(delivery.id)
    assert (deliveries(rt)[0].attempts, deliveries(rt)[0].failed_at) == (0, None)


def test_a_delivery_applied_on_a_later_attempt_keeps_no_error(rt: Runtime, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A transient failure (e.g. two workers racing on one order) is counted; once applied, its error is gone,
    # so "processed without an error" counts it and the status page does not list it.
    shopify.post(client, "checkouts_update")
    [delivery] = deliveries(rt)
    job = rt.broker.get_actor(intake.PROCESS_ACTOR).fn
    monkeypatch.setattr(connectors, "normalize", failing_normalize)
    with pytest.raises(RuntimeError):
        job(delivery.id)
    assert (deliveries(rt)[0].attempts, deliveries(rt)[0].error) == (1, "RuntimeError")
    monkeypatch.undo()
    job(delivery.id)
    [done] = deliveries(rt)
    assert (done.attempts, done.error, done.outcome) == (1, None, "cart created")
