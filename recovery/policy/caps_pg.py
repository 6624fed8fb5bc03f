"""The caps guard of one send in a single PostgreSQL statement, run in autocommit: one round trip where
`caps.mark_sending` takes four (BEGIN, lock, mark and record, COMMIT) per message.

It locks the shopper's ledger rows, re-checks both caps, marks the message `sending` and records the send,
all or nothing. One catch: every part of a statement reads one snapshot, taken before the locks were
granted, while the lock itself returns the newest version of a ledger row. A send to this shopper that
committed after the snapshot therefore shows as a locked row whose version (`xmin`) differs from the
snapshot's; the statement then marks nothing and answers STALE, and the caller takes the transaction
path, whose statements after the lock see that send. Each send updates the `cart:` row of its cart, so
the per-cart count read from the snapshot is complete whenever nothing is stale.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from recovery.db import DriverStatement
from recovery.policy.caps import MAX_PER_CART, Guard, settle

#: The statement could not decide (a send to this shopper committed meanwhile): use `caps.mark_sending`.
STALE = "stale"

_MARK_AT_ONCE = DriverStatement(text("""
WITH locked AS MATERIALIZED (
    SELECT id, xmin::text AS version, last_sent_at, last_message_id FROM shopper_sends
    WHERE id = ANY(CAST(:ledger_ids AS bigint[])) ORDER BY shopper_key FOR UPDATE
), seen AS MATERIALIZED (
    SELECT id, xmin::text AS version FROM shopper_sends WHERE id = ANY(CAST(:ledger_ids AS bigint[]))
), verdict AS MATERIALIZED (
    SELECT
        EXISTS (SELECT FROM locked JOIN seen USING (id) WHERE locked.version <> seen.version) AS stale,
        (SELECT max(last_sent_at) FROM locked
         WHERE last_message_id IS DISTINCT FROM :message_id) AS last_sent,
        (SELECT count(*) FROM recovery_messages
         WHERE cart_id = :cart_id AND channel = :channel AND status IN ('sending', 'sent')
           AND id <> :message_id) AS sent
), marked AS (
    UPDATE recovery_messages SET status = 'sending', claimed_at = :at, attempts = attempts + 1
    WHERE id = :message_id AND status = 'queued' AND (
        SELECT NOT stale
            AND (CAST(:cart_limit AS integer) IS NULL OR sent < :cart_limit)
            AND (CAST(:cap AS interval) IS NULL OR last_sent IS NULL OR last_sent + :cap <= :at)
        FROM verdict)
    RETURNING id
), recorded AS (
    UPDATE shopper_sends SET last_sent_at = :at, last_message_id = :message_id
    WHERE id = ANY(CAST(:ledger_ids AS bigint[])) AND EXISTS (SELECT FROM marked)
)
SELECT EXISTS (SELECT FROM marked) AS marked, stale, last_sent, sent FROM verdict
"""))


def mark_at_once(conn: Connection, guard: Guard, message_id: int, at: datetime) -> str | None:
    """None if marked `sending` (committed: `conn` is in autocommit); else what happened, as
    `caps.mark_sending` says it, or STALE. Needs the guard's `ledger_ids`."""
    limit = MAX_PER_CART.get(guard.channel)
    marked, stale, last_sent, sent = _MARK_AT_ONCE(
        conn, ledger_ids=list(guard.ledger_ids), message_id=message_id, cart_id=guard.cart_id,
        channel=guard.channel, cart_limit=limit, cap=guard.cap, at=at,
    ).fetchone()
    if marked:
        return None
    if stale:
        return STALE
    # Not marked: cancelled or moved as `caps.mark_sending` would, though no longer under the locks. That
    # is safe: the guard against a send too many was this statement, and a moved message is checked
    # again when it comes due.
    if limit is not None and sent >= limit:  # the cart's cap first, as in caps.mark_sending
        return settle(conn, message_id, "cancelled", f"{guard.channel}_cap_reached")
    if guard.cap is not None and last_sent is not None and last_sent + guard.cap > at:
        return settle(conn, message_id, "planned", "shopper_cap", due_at=last_sent + guard.cap)
    return "cancelled meanwhile"
