"""The retry policy for provider sends: at most 6 attempts within 6 hours, with backoff and jitter."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.storage.tables import utcnow

MAX_ATTEMPTS = 6
#: Dramatiq backoff for retry n (0-based) is MIN_BACKOFF * 2**n * uniform(1, 2): 5-10, 10-20, 20-40, 40-80
#: and 80-160 minutes, so five retries end within 310 minutes even at full jitter.
MIN_BACKOFF_MS = 5 * 60_000
MAX_BACKOFF_MS = 160 * 60_000
#: A provider's Retry-After is honoured up to this, so the whole run still ends within six hours.
MAX_RETRY_AFTER_MS = 30 * 60_000


def retry_after_delay(seconds: float, rng: random.Random | None = None) -> int:
    """Milliseconds to wait when the provider said when: at least that, plus up to 20% jitter, bounded."""
    base = max(seconds * 1000.0, 1000.0)
    return int(min(base * (rng or random).uniform(1.0, 1.2), MAX_RETRY_AFTER_MS))


def next_delay(attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> int:
    """Milliseconds before the next attempt, after `attempts` attempts so far (1-based)."""
    rng = rng or random.Random()
    backoff = int(min(MIN_BACKOFF_MS * 2 ** max(attempts - 1, 0) * rng.uniform(1.0, 2.0), MAX_BACKOFF_MS))
    # Retry-After is a floor ("not before"), never a way around the backoff.
    return max(backoff, retry_after_delay(retry_after, rng)) if retry_after is not None else backoff


def plan_retry(session: Session, message_ids: Sequence[int], retry_after: float | None = None) -> int | None:
    """After a transient failure in a send job: fail rows out of attempts, hold the rest for the retry.

    Returns the delay in milliseconds for the job's retry, or None when nothing in the batch is left to send.
    """
    give_up(session, message_ids)
    attempts = session.scalar(
        select(func.max(t.RecoveryMessage.attempts)).where(
            t.RecoveryMessage.id.in_(list(message_ids)), t.RecoveryMessage.status == "queued"
        )
    )
    if attempts is None:
        return None
    delay = next_delay(int(attempts), retry_after)
    hold_for_retry(session, message_ids, delay)
    return delay


def hold_for_retry(session: Session, message_ids: Sequence[int], delay_ms: int) -> None:
    """Rows put back to `queued` by a transient error wait for the retry, not for the lost-job sweep."""
    session.execute(
        update(t.RecoveryMessage)
        .where(t.RecoveryMessage.id.in_(list(message_ids)), t.RecoveryMessage.status == "queued")
        .values(claimed_at=utcnow() + timedelta(milliseconds=delay_ms))
        .execution_options(synchronize_session=False)
    )


def give_up(session: Session, message_ids: Sequence[int]) -> int:
    """Rows that used up their attempts are failed with the last provider reason; never sent again."""
    row = t.RecoveryMessage
    result = session.execute(
        update(row)
        .where(row.id.in_(list(message_ids)), row.status == "queued", row.attempts >= MAX_ATTEMPTS)
        .values(status="failed", reason="gave up after 6 attempts; last: " + func.coalesce(row.reason, ""))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
