"""Webhook deliveries: record once (dedupe on the delivery id), then process in a worker."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, or_, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from recovery.intake import limits, receipts
from recovery.storage import locks
from recovery.measure import metrics
from recovery.storage import tables as t
from recovery.intake.carts import apply_event
from recovery.storage.db import DriverStatement, defer_batches, insert_for
from recovery.model import LIFECYCLE_EVENTS, CartSnapshot, NormalizeResult, ShopRedact
from recovery.storage.tables import utcnow
from recovery.sequence.timing import Timing

log = logging.getLogger(__name__)

PROCESS_ACTOR = "process_delivery"
#: The same for several deliveries at once (relay and sweeper): one job per `BATCH` ids.
PROCESS_BATCH_ACTOR = "process_deliveries"
BATCH = 20

#: (platform, topic, payload) → NormalizeResult; raises ValueError for a payload of the wrong shape.
Normalize = Callable[[str, str, Any], NormalizeResult]


# Built once: constructing statements per request cost more CPU than running them.
_FIND_STORE = select(t.Store.id, t.Store.uninstalled_at).where(
    t.Store.platform == bindparam("platform"), t.Store.domain == bindparam("domain")
)


@functools.cache
def _insert_delivery(dialect: str) -> Any:
    return insert_for(dialect)(t.WebhookDelivery).on_conflict_do_nothing().returning(t.WebhookDelivery.id)


#: PostgreSQL: the store lookup and the idempotent INSERT in one statement (see `record_webhook`). Same
#: outcome as `record_delivery`: a delivery for an unknown or uninstalled shop is kept without its payload
#: and marked processed.
_RECORD_PG = DriverStatement(text("""
WITH store AS (
    SELECT id, id IS NOT NULL AND (uninstalled_at IS NULL OR CAST(:always AS boolean)) AS serving
    FROM stores WHERE platform = :platform AND domain = :shop
), found AS (
    SELECT store.id, coalesce(store.serving, false) AS serving, store.id IS NULL AS unknown
    FROM (SELECT 1) AS one LEFT JOIN store ON true
)
INSERT INTO webhook_deliveries
    (platform, shop, store_id, topic, delivery_id, event_id, triggered_at, received_at, payload, processed_at, error,
     order_checkout_token, order_cart_token, order_email_hash, order_phone_hash)
SELECT :platform, :shop, found.id, :topic, :delivery_id, :event_id, CAST(:triggered_at AS timestamptz),
       CAST(:now AS timestamptz),
       CASE WHEN found.serving THEN CAST(:payload_text AS json) END,
       CASE WHEN NOT found.serving THEN CAST(:now AS timestamptz) END,
       CASE WHEN found.unknown THEN 'unknown shop' WHEN NOT found.serving THEN 'shop uninstalled' END,
       CASE WHEN found.serving THEN CAST(:order_checkout_token AS varchar) END,
       CASE WHEN found.serving THEN CAST(:order_cart_token AS varchar) END,
       CASE WHEN found.serving THEN CAST(:order_email_hash AS varchar) END,
       CASE WHEN found.serving THEN CAST(:order_phone_hash AS varchar) END
FROM found
ON CONFLICT DO NOTHING
RETURNING id, processed_at IS NULL AS serving
"""), group_commit=True)


def record_webhook(engine: Engine, *, raw: str, payload: Any, **delivery: Any) -> tuple[int | None, str]:
    """The webhook route's `record_delivery`, given also the body's own JSON text `raw` (already parsed
    into `payload` and checked by the caller). On PostgreSQL the store lookup and the insert are one
    statement (`_RECORD_PG`), prepared once: committed on its own in a sync worker (recovery.storage.pgdirect: one
    round trip, no BEGIN or COMMIT), or under gevent in one transaction with the other deliveries waiting
    in this process (recovery.storage.pggroup: one commit for all). The JSON is stored as sent (PostgreSQL checks
    its syntax), not serialized again. Either way the row is durable before the 2xx.

    `order_keys`: an order's receipt columns (recovery.intake.receipts), stored in the same INSERT so the last-mile
    send check sees the purchase from the moment it is acknowledged."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            return record_delivery(conn, payload=payload, **delivery)
    if "\\u0000" in raw:  # rare (and maybe an escaped backslash): store the NUL-free form
        raw = json.dumps(without_nul(payload))
    keys = delivery.pop("order_keys", None) or receipts.NO_KEYS
    rows = _RECORD_PG.autocommit(
        engine, now=utcnow(), payload_text=raw, always=delivery.pop("always", False),
        event_id=delivery.pop("event_id", None), **keys, **delivery,
    )
    if not rows:
        return None, "duplicate"
    return (rows[0][0], "accepted") if rows[0][1] else (None, "not served")


def without_nul(value: Any) -> Any:
    """`value` with U+0000 in its strings (keys too) replaced by U+FFFD: valid JSON, and a shopper can paste
    one into a note, but PostgreSQL's jsonb and text cannot hold it (the insert would fail on every retry)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


def record_delivery(
    conn: Connection,
    *,
    platform: str,
    shop: str,
    topic: str,
    delivery_id: str,
    triggered_at: datetime | None,
    payload: Any,
    always: bool = False,
    event_id: str | None = None,
    order_keys: dict[str, str | None] | None = None,
) -> tuple[int | None, str]:
    """Insert the delivery once: (id to process or None, "accepted" | "duplicate" | "not served"). Once per
    delivery id, and once per (topic, `event_id`) when the platform names the event.

    The caller commits, then enqueues the id. Deliveries for unknown or uninstalled shops are recorded
    (without their payload) and never processed. Core, not the ORM: this runs on every webhook.
    """
    store = conn.execute(_FIND_STORE, {"platform": platform, "domain": shop}).first()
    # `always`: privacy and uninstall topics are processed for an uninstalled shop too.
    serving = store is not None and (store.uninstalled_at is None or always)
    now = utcnow()
    values = {
        "platform": platform,
        "shop": shop,
        "store_id": store.id if store else None,
        "topic": topic,
        "delivery_id": delivery_id,
        "event_id": event_id,
        "triggered_at": triggered_at,
        "received_at": now,
        "payload": without_nul(payload) if serving else None,
        "processed_at": None if serving else now,
        "error": None if serving else ("unknown shop" if store is None else "shop uninstalled"),
        **receipts.columns_of(order_keys if serving else None),
    }
    delivery_pk = conn.execute(_insert_delivery(conn.dialect.name), values).scalar()
    if delivery_pk is None:
        return None, "duplicate"
    return (delivery_pk, "accepted") if serving else (None, "not served")


def process_delivery(session: Session, delivery_pk: int, normalize: Normalize, timing: Timing = Timing()) -> str:
    """Apply one stored delivery; idempotent (a second run returns early). Caller commits."""
    delivery = session.scalar(
        select(t.WebhookDelivery).where(t.WebhookDelivery.id == delivery_pk).with_for_update()
    )
    if delivery is None or delivery.processed_at is not None:
        return "nothing to do"
    # One store's events apply one at a time: an order and its checkout processed side by side
    # would otherwise each miss the other, leaving a bought cart open to reminders. Lock order and mode:
    # recovery/storage/locks.py (NO KEY UPDATE: receipts' and assignments' foreign keys never wait for it).
    store = (
        session.scalar(select(t.Store).where(t.Store.id == delivery.store_id).with_for_update(**locks.STORE_EXCLUSIVE))
        if delivery.store_id
        else None
    )
    if store is None:
        outcome = "shop not served"
    else:
        try:
            result = normalize(delivery.platform, delivery.topic, delivery.payload)
        except ValueError as exc:
            # A payload we cannot read is kept (for diagnosis) and not retried: retrying cannot fix it.
            delivery.processed_at, delivery.error = utcnow(), f"bad payload: {exc}"[:500]
            delivery.outcome = "rejected"
            metrics.dead_letter(delivery.platform, "rejected")
            log.warning("delivery %s (%s) rejected: %s", delivery.id, delivery.topic, exc)
            return delivery.error
        named = getattr(result.event, "shop", None) if isinstance(result.event, LIFECYCLE_EVENTS) else None
        if named is not None and named != delivery.shop:
            # The signature covers the body, not the headers: a privacy request about another shop,
            # or a body replayed under another shop's domain, erases nothing here.
            delivery.processed_at, delivery.outcome = utcnow(), "rejected"
            delivery.error, delivery.payload = "bad payload: the body names another shop", None
            log.warning("delivery %s (%s) rejected: the body names another shop", delivery.id, delivery.topic)
            return delivery.error
        try:
            result = replace(result, event=limits.checked(result.event)) if result.event is not None else result
        except limits.LimitError as exc:  # a value no column can hold: rejected, as a bad payload is
            delivery.processed_at, delivery.error, delivery.outcome = utcnow(), f"bad payload: {exc}"[:500], "rejected"
            metrics.dead_letter(delivery.platform, "rejected")
            log.warning("delivery %s (%s) rejected: %s", delivery.id, delivery.topic, exc)
            return delivery.error
        if getattr(result.event, "triggered_at", False) is None:
            # Events that order by X-Shopify-Triggered-At (catalog) get it from the stored delivery.
            stamped = replace(result.event, triggered_at=delivery.triggered_at)  # type: ignore[type-var]
            result = replace(result, event=stamped)
        if isinstance(result.event, CartSnapshot):  # of two states in one second, the later-received one wins
            result = replace(result, event=replace(result.event, delivery_id=delivery.id))
        if result.event is None:
            outcome = result.skipped or "no event"
        elif not (store.active or isinstance(result.event, LIFECYCLE_EVENTS)):
            outcome = "shop not served"
        else:
            outcome = apply_event(session, store, result.event, timing)
        if isinstance(result.event, ShopRedact):
            # The store and every row of it, this delivery included, are gone.
            session.expunge_all()
            log.info("delivery for an erased shop: %s", outcome)
            return outcome
    delivery.processed_at, delivery.outcome = utcnow(), outcome[:80]
    delivery.error = None  # an earlier attempt's failure (counted in `attempts`) no longer describes it
    metrics.applied(delivery.platform, (delivery.processed_at - delivery.received_at).total_seconds())
    delivery.payload = None  # raw personal data is kept only as long as it is needed
    receipts.clear(delivery)  # applied: the order (if any) now speaks for itself
    log.info("delivery %s (%s): %s", delivery.id, delivery.topic, outcome)
    return outcome


_UNRELAYED = (t.WebhookDelivery.processed_at.is_(None), t.WebhookDelivery.requeued_at.is_(None))
_ANY_UNRELAYED = DriverStatement(select(exists().where(*_UNRELAYED)))


def any_new(engine: Engine) -> bool:
    """Whether `relay_new` has work: on PostgreSQL one probe of the partial index (recovery.storage.pgdirect),
    so an idle relay polling 20 times a second costs about 1 ms of CPU a second instead of 40."""
    if engine.dialect.name != "postgresql":
        return True
    return bool(_ANY_UNRELAYED.autocommit(engine)[0][0])


def relay_new(session: Session, limit: int = 1000) -> list[int]:
    """Relay mode (Settings.intake_relay): hand the deliveries no job was sent for yet to the workers, in
    batches, once each (marked `requeued_at`; two dispatchers never take the same one). The web process
    then only stores a webhook; this saves it the broker round trip on every request."""
    pending = (
        select(t.WebhookDelivery.id)
        .where(*_UNRELAYED)
        .order_by(t.WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    ids = sorted(session.scalars(
        update(t.WebhookDelivery)
        .where(t.WebhookDelivery.id.in_(pending))
        .values(requeued_at=utcnow())
        .returning(t.WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    ).all())  # fmt: skip
    defer_batches(session, PROCESS_BATCH_ACTOR, ids, BATCH)
    return ids


def requeue_unprocessed(
    session: Session, older_than: timedelta, limit: int = 500, held: Callable[[], set[int] | None] | None = None
) -> list[int]:
    """Deliveries stored but never processed (broker flushed or down at enqueue): enqueue again.

    Each is looked at most once per `older_than` (`requeued_at`), and two dispatchers never take the same
    one. A delivery whose id a job in the broker still carries (`held`, see app/broker_jobs.py: waiting
    behind a backlog, in a retry's delay, running) is only slow: left to that job. Dead letters have
    `processed_at` set and are never taken.
    """
    cutoff = utcnow() - older_than
    rows = session.scalars(
        select(t.WebhookDelivery)
        .where(
            t.WebhookDelivery.processed_at.is_(None),  # dead letters have it set: never swept again
            t.WebhookDelivery.received_at < cutoff,
            or_(t.WebhookDelivery.requeued_at.is_(None), t.WebhookDelivery.requeued_at < cutoff),
        )
        .order_by(t.WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    alive = (held() if held is not None and rows else None) or set()  # asked after the select: no race
    for row in rows:
        row.requeued_at = utcnow()
    ids = [row.id for row in rows if row.id not in alive]
    defer_batches(session, PROCESS_BATCH_ACTOR, ids, BATCH)
    return ids
