"""Claim due messages from PostgreSQL (FOR UPDATE SKIP LOCKED) and hand their ids to the broker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.db import defer_batches
from recovery.sending.send import SEND_ACTOR

#: Messages per send job (the job re-checks its batch with a fixed number of queries). Small enough that
#: one slow provider call delays few others; 20 left the fixed cost a fifth of the send path at 400 due a
#: second (`cartresq bench lateness`: 20 → 50 raised throughput about 12 %, 100 lowered it again).
SEND_BATCH = 50


def claim_due(session: Session, now: datetime, limit: int = 500) -> list[int]:
    """Mark due rows `queued` and enqueue their send jobs after commit. Two dispatchers never share a row."""
    m = t.RecoveryMessage
    due = (
        select(m.id).where(m.status == "planned", m.due_at <= now).order_by(m.due_at).limit(limit)
        .with_for_update(skip_locked=True)
    )  # fmt: skip
    # One statement, not a row object and an UPDATE per message: at 400 due a second the ORM's flush was
    # most of the dispatcher's CPU.
    rows = session.execute(
        update(m).where(m.id.in_(due.scalar_subquery())).values(status="queued", claimed_at=now)
        .returning(m.id, m.due_at).execution_options(synchronize_session=False)
    ).all()  # fmt: skip
    ids = [row.id for row in sorted(rows, key=lambda r: (r.due_at, r.id))]  # RETURNING keeps no order
    defer_batches(session, SEND_ACTOR, ids, SEND_BATCH)
    return ids


#: The broker's answer to "which ids do your jobs still carry?" (None: it cannot tell). See app/broker_jobs.py.
HeldIds = Callable[[], "set[int] | None"]


def requeue_lost(
    session: Session, now: datetime, after: timedelta, limit: int = 500, held: HeldIds | None = None
) -> list[int]:
    """Queued rows whose job vanished (Redis flushed or restarted without persistence): enqueue again.

    A row queued for longer than `after` may only be slow (a backlog, a retry's delay, a long job): when
    `held` can tell, a row whose id a job in the broker still carries is left to that job and checked again
    `after` later (claimed_at moves on); only the others are enqueued again. Jobs are idempotent.
    """
    rows = session.scalars(
        select(t.RecoveryMessage)
        .where(t.RecoveryMessage.status == "queued", t.RecoveryMessage.claimed_at < now - after)
        .order_by(t.RecoveryMessage.claimed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    alive = (held() if held is not None and rows else None) or set()  # asked after the select: no race
    for row in rows:
        row.claimed_at = now
    ids = [row.id for row in rows if row.id not in alive]
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
