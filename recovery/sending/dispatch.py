"""Claim due messages from PostgreSQL (FOR UPDATE SKIP LOCKED) and hand their ids to the broker."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.db import defer_batches
from recovery.sending.send import SEND_ACTOR

#: Messages per send job (the job re-checks its batch with a fixed number of queries). Small enough that
#: one slow provider call delays few others.
SEND_BATCH = 20


def claim_due(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Mark due rows `queued` and enqueue their send jobs after commit. Two dispatchers never share a row."""
    rows = session.scalars(
        select(t.RecoveryMessage)
        .where(t.RecoveryMessage.status == "planned", t.RecoveryMessage.due_at <= now)
        .order_by(t.RecoveryMessage.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status, row.claimed_at = "queued", now
    ids = [row.id for row in rows]
    defer_batches(session, SEND_ACTOR, ids, SEND_BATCH)
    return ids


def requeue_lost(session: Session, now: datetime, after: timedelta, limit: int = 500) -> list[int]:
    """Queued rows whose job vanished (Redis restarted, worker killed): enqueue again. Jobs are idempotent."""
    rows = session.scalars(
        select(t.RecoveryMessage)
        .where(t.RecoveryMessage.status == "queued", t.RecoveryMessage.claimed_at < now - after)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.claimed_at = now
    ids = [row.id for row in rows]
    defer_batches(session, SEND_ACTOR, ids, SEND_BATCH)
    return ids


def fail_interrupted(session: Session, now: datetime, after: timedelta) -> int:
    """A row left `sending` means a crash mid-send: it may or may not have gone out, so never resend it."""
    result = session.execute(
        update(t.RecoveryMessage)
        .where(t.RecoveryMessage.status == "sending", t.RecoveryMessage.claimed_at < now - after)
        .values(status="failed", reason="interrupted mid-send; not resent to avoid a duplicate")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
