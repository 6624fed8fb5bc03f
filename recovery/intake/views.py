"""Product-page 'view' beacons (browse abandonment): one `product_views` row per session and product, counted.

A view names a product id only (never a title: what the message shows comes from recorded catalog facts).
Rows are made by strangers, so they are bounded: the /track rate limits, at most VIEWS_PER_SESSION products
per session, and the purge three days after the reminder came due (recovery/consent/purge.py).

A shopper known from an earlier session: the tracker's visitor id (kept in the browser across sessions) is
remembered with the cart a beacon of its session named (`tracker_visitors`, with consent), so a later session's
views, which name no cart, count for that cart's shopper. Kept VISITOR_KEPT after it was last tied to a cart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from recovery.config.store_settings import effective
from recovery.sequence.timing import Timing
from recovery.storage import tables as t
from recovery.storage.db import insert_for

#: Products one tracker session may have counted; views of more are dropped.
VIEWS_PER_SESSION = 50
#: The product id of a session's link row: which cart the session named last (see link).
SESSION_ROW = ""
#: A visitor id tied to a cart counts for its shopper this long after the last time it was tied (then purged).
VISITOR_KEPT = timedelta(days=30)


def record(session: Session, store: t.Store, sid: str, product_id: str, at: datetime, timing: Timing,
           cart_id: int | None, vid: str | None = None) -> str:
    """Count one view (an upsert); what happened, for the caller's log detail."""
    due = at + timing.span(effective(store.settings or {})["browse_abandonment_after"])
    table = t.ProductView.__table__
    known = session.scalar(select(func.count()).select_from(table).where(table.c.store_id == store.id,
                                                                          table.c.sid == sid))
    if (known or 0) >= VIEWS_PER_SESSION:
        exists = session.scalar(select(table.c.id).where(table.c.store_id == store.id, table.c.sid == sid,
                                                         table.c.product_id == product_id))
        if exists is None:
            return "view dropped: limit"
    if cart_id is None:
        cart_id = _linked(session, store.id, sid) or (_visitor(session, store.id, vid, at) if vid else None)
    conn = session.connection()
    stmt = insert_for(conn.dialect.name)(table).values(
        store_id=store.id, sid=sid, product_id=product_id, views=1, last_at=at, due_at=due, cart_id=cart_id)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["store_id", "sid", "product_id"],
        set_={"views": table.c.views + 1, "last_at": stmt.excluded.last_at, "due_at": stmt.excluded.due_at,
              "cart_id": func.coalesce(stmt.excluded.cart_id, table.c.cart_id)},
    ))
    return "view"


def link(session: Session, store_id: int, sid: str, cart_id: int, at: datetime) -> None:
    """The session's views belong to this cart's shopper (any beacon of the session that names the cart).

    The link is kept as the session's row with no product (SESSION_ROW, never counted as a view), so a view
    that comes later, without a cart in its beacon, finds it."""
    table = t.ProductView.__table__
    conn = session.connection()
    stmt = insert_for(conn.dialect.name)(table).values(
        store_id=store_id, sid=sid, product_id=SESSION_ROW, views=0, last_at=at, due_at=at, cart_id=cart_id)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["store_id", "sid", "product_id"],
        set_={"cart_id": stmt.excluded.cart_id, "last_at": stmt.excluded.last_at, "due_at": stmt.excluded.due_at},
    ))
    session.execute(update(table).where(table.c.store_id == store_id, table.c.sid == sid,
                                        table.c.cart_id.is_(None)).values(cart_id=cart_id))


def _linked(session: Session, store_id: int, sid: str) -> int | None:
    table = t.ProductView.__table__
    return session.scalar(select(table.c.cart_id).where(table.c.store_id == store_id, table.c.sid == sid,
                                                        table.c.product_id == SESSION_ROW))


def remember(session: Session, store_id: int, vid: str, cart_id: int, at: datetime) -> None:
    """This browser's visitor id belongs to this cart's shopper (the latest cart its sessions named)."""
    table = t.TrackerVisitor.__table__
    conn = session.connection()
    stmt = insert_for(conn.dialect.name)(table).values(store_id=store_id, vid=vid, cart_id=cart_id, seen_at=at)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["store_id", "vid"], set_={"cart_id": stmt.excluded.cart_id, "seen_at": stmt.excluded.seen_at},
    ))


def _visitor(session: Session, store_id: int, vid: str, at: datetime) -> int | None:
    table = t.TrackerVisitor.__table__
    return session.scalar(select(table.c.cart_id).where(table.c.store_id == store_id, table.c.vid == vid,
                                                        table.c.seen_at > at - VISITOR_KEPT))
