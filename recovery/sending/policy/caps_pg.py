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

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from recovery.storage.db import DriverStatement
from recovery.sending.policy.caps import MAX_PER_CART, Guard, settle
from recovery.intake.receipts import MATCH_SQL

#: The statement could not decide (a send to this shopper committed meanwhile): use `caps.mark_sending`.
STALE = "stale"

#: The `sent` mark of a batch's previous hand-over (recovery/sending/send.py), put in front of the next
#: message's `sending` mark so both are one statement: one round trip and one commit per message instead
#: of two. A data-modifying CTE runs to completion whether the rest of the statement reads it or not, so
#: the mark is made whatever the next message's verdict; it changes another row than the statement marks.
SENT_BEFORE = """WITH sent_before AS (
    UPDATE recovery_messages SET status = 'sent', sent_at = :sent_at, provider_message_id = :sent_provider_id
    WHERE id = :sent_id AND status = 'sending'
)"""
#: queued → sending without a guard, after the previous hand-over's `sent` mark (caps.MARK, as text).
SENT_AND_MARK = DriverStatement(text(SENT_BEFORE + """
UPDATE recovery_messages SET status = 'sending', claimed_at = :at, attempts = attempts + 1
WHERE id = :message_id AND status = 'queued'
"""))

# `held`: the last-mile check that no order receipt for this shopper waits unapplied (recovery/intake/receipts.py),
# in the statement that marks the message, so no round trip is added.
_MARK_AT_ONCE_SQL = """WITH locked AS MATERIALIZED (
    SELECT id, xmin::text AS version, last_sent_at, last_message_id FROM shopper_sends
    WHERE id = ANY(CAST(:ledger_ids AS bigint[])) ORDER BY shopper_key FOR UPDATE
), seen AS MATERIALIZED (
    SELECT id, xmin::text AS version FROM shopper_sends WHERE id = ANY(CAST(:ledger_ids AS bigint[]))
), verdict AS MATERIALIZED (
    SELECT
        EXISTS (SELECT FROM locked JOIN seen USING (id) WHERE locked.version <> seen.version) AS stale,
        CAST(:r_store AS bigint) IS NOT NULL AND """ + MATCH_SQL + """ AS held,
        (SELECT max(last_sent_at) FROM locked
         WHERE last_message_id IS DISTINCT FROM :message_id) AS last_sent,
        -- The cart's rows by its index only: with `status` in the WHERE the planner may AND in the status
        -- index, whose `sent` entries grow with every send (seen: 8,000 index rows read per hand-over).
        (SELECT count(*) FILTER (WHERE channel = :channel AND status IN ('sending', 'sent')
                                 AND flow = 'cart' AND id <> :message_id)
         FROM recovery_messages WHERE cart_id = :cart_id) AS sent
), marked AS (
    UPDATE recovery_messages SET status = 'sending', claimed_at = :at, attempts = attempts + 1
    WHERE id = :message_id AND status = 'queued' AND (
        SELECT NOT stale AND NOT held
            AND (CAST(:cart_limit AS integer) IS NULL OR sent < :cart_limit)
            AND (CAST(:cap AS interval) IS NULL OR last_sent IS NULL OR last_sent + :cap <= :at)
        FROM verdict)
    RETURNING id
), recorded AS (
    UPDATE shopper_sends SET last_sent_at = :at, last_message_id = :message_id
    WHERE id = ANY(CAST(:ledger_ids AS bigint[])) AND EXISTS (SELECT FROM marked)
)
SELECT EXISTS (SELECT FROM marked) AS marked, stale, last_sent, sent, held FROM verdict
"""
_MARK_AT_ONCE = DriverStatement(text(_MARK_AT_ONCE_SQL))
#: The same, preceded by the `sent` mark of the batch's previous hand-over.
_SENT_AND_MARK_AT_ONCE = DriverStatement(text(SENT_BEFORE + ", " + str(_MARK_AT_ONCE_SQL).removeprefix("WITH ")))
_NO_RECEIPT = {"r_store": None, "r_since": None, "r_ck": None, "r_ct": None, "r_eh": None, "r_ph": None}


def mark_at_once(
    conn: Connection, guard: Guard, message_id: int, at: datetime, sent_before: Mapping[str, Any] | None = None
) -> str | None:
    """None if marked `sending` (committed: `conn` is in autocommit); else what happened, as
    `caps.mark_sending` says it, or STALE. Needs the guard's `ledger_ids`. `sent_before`: the parameters of
    `SENT_BEFORE`, the previous hand-over's `sent` mark, committed by the same statement whatever
    this one's verdict."""
    limit = MAX_PER_CART.get(guard.channel) if guard.per_cart else None
    receipt = guard.receipt.params() if guard.receipt is not None else _NO_RECEIPT
    statement = _MARK_AT_ONCE if sent_before is None else _SENT_AND_MARK_AT_ONCE
    marked, stale, last_sent, sent, held = statement(
        conn, ledger_ids=list(guard.ledger_ids), message_id=message_id, cart_id=guard.cart_id,
        channel=guard.channel, cart_limit=limit, cap=guard.cap, at=at, **receipt, **(sent_before or {}),
    ).fetchone()
    if marked:
        return None
    if held:  # an order acknowledged for this shopper, not applied yet (recovery/intake/receipts.py)
        return settle(conn, message_id, "planned", "order_receipt_pending", due_at=guard.receipt.hold_until)
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
