"""Every store's daily figures counted afresh in two statements (PostgreSQL): after a bulk load (the
dashboard bench's seeding), or to repair them after a store's time zone changed.

The same counts as `recovery.measure.figures.recount` (a test holds them equal), written as set-based SQL so
millions of carts are counted in one pass instead of one query per store and day.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

DAY = "(c.abandoned_at AT TIME ZONE s.timezone)::date"
SENT = "m.sent_at IS NOT NULL"

FUNNEL = f"""
INSERT INTO daily_figures (store_id, day, step, channel, currency, planned, sent, delivered, opened, clicked, ordered,
    abandoned, recovered, recovered_revenue, treated_carts, treated_ordered, holdout_carts, holdout_ordered)
SELECT c.store_id, {DAY}, m.step, m.channel, '', count(*), count(*) FILTER (WHERE {SENT}),
    count(*) FILTER (WHERE {SENT} AND (m.delivery_status = 'delivered' OR m.opened_at IS NOT NULL OR m.clicked_at IS NOT NULL)),
    count(*) FILTER (WHERE {SENT} AND m.opened_at IS NOT NULL),
    count(*) FILTER (WHERE {SENT} AND m.clicked_at IS NOT NULL),
    count(*) FILTER (WHERE {SENT} AND c.status = 'recovered' AND c.recovered_at >= m.sent_at),
    0, 0, 0, 0, 0, 0, 0
FROM recovery_messages m JOIN carts c ON c.id = m.cart_id JOIN stores s ON s.id = c.store_id
WHERE c.abandoned_at IS NOT NULL
GROUP BY c.store_id, {DAY}, m.step, m.channel
"""

CARTS = f"""
INSERT INTO daily_figures (store_id, day, step, channel, currency, planned, sent, delivered, opened, clicked, ordered,
    abandoned, recovered, recovered_revenue, treated_carts, treated_ordered, holdout_carts, holdout_ordered)
SELECT c.store_id, {DAY}, 0, '', c.currency, 0, 0, 0, 0, 0, 0,
    count(*), count(*) FILTER (WHERE c.status = 'recovered'),
    COALESCE(sum(r.total) FILTER (WHERE c.status = 'recovered'), 0),
    count(*) FILTER (WHERE a.variant <> 'holdout'),
    count(*) FILTER (WHERE a.variant <> 'holdout' AND c.status IN ('recovered', 'completed')),
    count(*) FILTER (WHERE a.variant = 'holdout'),
    count(*) FILTER (WHERE a.variant = 'holdout' AND c.status IN ('recovered', 'completed'))
FROM carts c JOIN stores s ON s.id = c.store_id
LEFT JOIN experiment_assignments a ON a.cart_id = c.id AND a.experiment = 'holdout'
LEFT JOIN (
    SELECT o.cart_id, o.currency, sum(o.total) AS total FROM orders o
    WHERE o.attribution = 'recovered' AND o.cancelled_at IS NULL AND o.cart_id IS NOT NULL
    GROUP BY o.cart_id, o.currency
) r ON r.cart_id = c.id AND r.currency = c.currency
WHERE c.abandoned_at IS NOT NULL
GROUP BY c.store_id, {DAY}, c.currency
"""


def rebuild_all(session: Session) -> int:
    """Replace every store's figures by a full count (caller commits); returns the rows written."""
    if session.get_bind().dialect.name != "postgresql":
        raise RuntimeError("rebuild_all is PostgreSQL-only; elsewhere refresh() recounts marked days")
    session.execute(text("LOCK TABLE daily_figures IN EXCLUSIVE MODE"))
    session.execute(text("DELETE FROM daily_figures"))
    session.execute(text("DELETE FROM figure_marks"))  # what they marked is counted now
    written = 0
    for statement in (FUNNEL, CARTS):
        written += session.execute(text(statement)).rowcount or 0  # type: ignore[attr-defined]
    return written
