"""Dead letters: webhook deliveries whose processing keeps failing end `failed` after MAX_ATTEMPTS, with
their error, instead of being retried (and swept) forever; the store's status page lists them with the
rejected ones, and an operator can retry one (app/web/operator.py)."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from recovery.measure import metrics
from recovery.storage import tables as t
from recovery.storage.db import defer_batches
from recovery.intake.deliveries import BATCH, PROCESS_BATCH_ACTOR
from recovery.storage.tables import utcnow

log = logging.getLogger(__name__)

_QUOTED = re.compile(r'"[^"]*"')
#: Processing attempts that raise before a delivery is given up as dead (`failed_at`, `error`).
MAX_ATTEMPTS = 5


def transient(exc: BaseException) -> bool:
    """An outage (connection lost, server restarting) or a lock conflict: retried, not counted against the
    delivery, which is not at fault."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def describe(exc: BaseException) -> str:
    """What went wrong, without the values involved (a database error's text may quote personal data)."""
    cause = getattr(exc, "orig", None) or exc
    diag = getattr(cause, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:  # e.g. 'value too long for type character varying(32)'; quoted values masked
        masked = _QUOTED.sub('"…"', primary)
        return f"{type(cause).__name__}: {masked}"[:500]
    return type(cause).__name__


def record_failure(session: Session, delivery_pk: int, exc: BaseException, now: datetime | None = None) -> bool:
    """Count one failed attempt at processing a delivery (the caller's transaction); True when that was
    the last one: the delivery is then dead (processed_at and failed_at set, `error` says why), shown on
    the store's status page, and neither retried nor swept again until an operator retries it."""
    row = session.scalar(
        select(t.WebhookDelivery).where(t.WebhookDelivery.id == delivery_pk).with_for_update()
    )
    if row is None or row.processed_at is not None:
        return False
    row.attempts = (row.attempts or 0) + 1
    row.error = describe(exc)
    if row.attempts < MAX_ATTEMPTS:
        return False
    row.processed_at = row.failed_at = now or utcnow()
    row.outcome = "failed"
    metrics.dead_letter(row.platform, "failed")
    log.error("delivery %s (%s) failed %d times; dead letter: %s", row.id, row.topic, row.attempts, row.error)
    return True


def dead_letters(session: Session, store_id: int, limit: int = 100) -> list[t.WebhookDelivery]:
    """A store's deliveries that were not applied: dead (failed N times) or rejected, newest first."""
    return list(session.scalars(
        select(t.WebhookDelivery)
        .where(t.WebhookDelivery.store_id == store_id,
               or_(t.WebhookDelivery.failed_at.is_not(None), t.WebhookDelivery.outcome == "rejected"))
        .order_by(t.WebhookDelivery.id.desc())
        .limit(limit)
    ))  # fmt: skip


def retry_dead(session: Session, store_id: int, delivery_pk: int) -> bool:
    """An operator's retry of a dead or rejected delivery (after a fix was deployed): back to unprocessed
    with fresh attempts, enqueued after commit. False if it is not one of the store's dead letters or its
    payload is gone."""
    row = session.scalar(
        select(t.WebhookDelivery)
        .where(t.WebhookDelivery.id == delivery_pk, t.WebhookDelivery.store_id == store_id)
        .with_for_update()
    )
    if row is None or row.payload is None or not (row.failed_at is not None or row.outcome == "rejected"):
        return False
    row.processed_at = row.failed_at = row.outcome = None
    row.attempts, row.requeued_at = 0, utcnow()
    row.error = f"retried by an operator; was: {row.error or ''}"[:500]
    defer_batches(session, PROCESS_BATCH_ACTOR, [row.id], BATCH)
    return True
