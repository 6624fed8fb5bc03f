"""Dramatiq actors, declared on a runtime's broker by its composition root (app/runtime.py): they take
ids, re-read state and are idempotent."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import dramatiq

import connectors
from recovery.intake import deadletters, deliveries as intake
from recovery.sending import retry
from recovery.sending.channels import TransientSendError
from recovery.sending.send import SEND_ACTOR

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger(__name__)


def declare_actors(runtime: Runtime) -> None:
    """Declare every actor on this runtime's broker. Actors take ids, re-read state and are idempotent."""

    @dramatiq.actor(
        broker=runtime.broker,
        actor_name=intake.PROCESS_ACTOR,
        queue_name="intake",
        max_retries=8,
        min_backoff=500,
        max_backoff=60_000,
    )
    def process_delivery(delivery_pk: int) -> None:
        try:
            with runtime.sessions.begin() as session:
                intake.process_delivery(session, delivery_pk, connectors.normalize, runtime.timing)
        except Exception as exc:
            if deadletters.transient(exc):
                raise  # an outage is not the delivery's fault: retried, not counted
            try:
                with runtime.sessions.begin() as session:
                    dead = deadletters.record_failure(session, delivery_pk, exc)
            except Exception:  # noqa: BLE001 - could not even count it: retry as before
                raise exc from None
            if dead:
                return  # a dead letter, on the store's status page; no more retries
            raise

    @dramatiq.actor(broker=runtime.broker, actor_name=intake.PROCESS_BATCH_ACTOR, queue_name="intake", max_retries=0)
    def process_deliveries(delivery_pks: list[int]) -> None:
        # Each in its own transaction; one that fails goes on alone, with process_delivery's retries,
        # so it neither holds back the others nor makes them run again.
        for pk in delivery_pks:
            try:
                process_delivery.fn(pk)
            except Exception as exc:  # any failure: that delivery's own job retries it
                # The type only: a database error's text can carry the payload's personal data.
                log.warning("delivery %s failed in a batch (%s); retrying it alone", pk, type(exc).__name__)
                runtime.enqueue(intake.PROCESS_ACTOR, [pk])

    @dramatiq.actor(
        broker=runtime.broker,
        actor_name=SEND_ACTOR,
        queue_name="send",
        # Transient provider errors only (timeouts, 429, 5xx), at most 6 attempts within 6 hours: the delay
        # comes from recovery.sending.retry (exponential with jitter, Retry-After as a floor) through Retry(delay=...);
        # each row also counts its own attempts and is failed at the sixth. Permanent errors never get here.
        max_retries=retry.MAX_ATTEMPTS - 1,
        min_backoff=retry.MIN_BACKOFF_MS,
        max_backoff=retry.MAX_BACKOFF_MS,
        retry_when=lambda retries, exc: isinstance(exc, dramatiq.Retry) and retries < retry.MAX_ATTEMPTS - 1,
    )
    def send_messages(message_ids: list[int]) -> None:
        try:
            runtime.sender.send_batch(runtime.sessions, message_ids)
        except TransientSendError as exc:
            with runtime.sessions.begin() as session:
                delay = retry.plan_retry(session, message_ids, getattr(exc, "retry_after", None))
            if delay is None:
                log.warning("send job: provider unavailable, every message in the batch out of attempts")
                return
            log.info("send job: provider unavailable (%s); retrying in %d s", type(exc).__name__, delay // 1000)
            raise dramatiq.Retry(str(exc), delay=delay) from exc
