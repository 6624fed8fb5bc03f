"""The Carts list (search, filters, keyset pages) and one cart's page with its timeline.

The list is ordered by last activity, newest first, and paged by the last row's (last_activity_at, id)
(index ix_carts_store_activity_id): page 1000 costs what page 1 costs. Every query is scoped to the store.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import abort, g, render_template, request
from sqlalchemy import and_, exists, or_, select, tuple_
from sqlalchemy.orm import Session

from app.web.dashboard import mask
from app.web.merchant import bp
from app.web.merchant.context import current_store, merchant_required
from app.web.merchant.ranges import day_range, local
from app.web.merchant.timeline import timeline
from recovery.storage import tables as t
from recovery.measure.figures import zone
from recovery.model import CartStatus, Channel

PAGE = 50
STATUSES = tuple(s.value for s in CartStatus)
CHANNELS = tuple(c.value for c in Channel)
MAX_QUERY = 320


def encode_cursor(at: datetime, cart_id: int) -> str:
    raw = f"{at.astimezone(UTC).isoformat()}|{cart_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        at, cart_id = raw.split("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, int(cart_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        abort(400, "after: not a page cursor of this list")


def search_clause(session: Session, store_id: int, q: str):  # type: ignore[no-untyped-def]
    """Email (prefix; stored lower-case), order name or number, cart id or token. The orders are looked up
    first, so every branch of the OR is an index probe (an IN (subquery) branch would scan the store)."""
    c, o = t.Cart, t.Order
    names = {q, f"#{q.lstrip('#')}"}
    cart_ids = set(session.scalars(select(o.cart_id).where(o.store_id == store_id, o.cart_id.is_not(None), o.name.in_(names))))
    cart_ids |= set(session.scalars(select(o.cart_id).where(o.store_id == store_id, o.cart_id.is_not(None), o.platform_order_id == q.lstrip("#"))))
    if q.isdigit() and len(q) < 19:
        cart_ids.add(int(q))
    clauses = [c.checkout_token == q, c.cart_token == q]
    if cart_ids:
        clauses.append(c.id.in_(sorted(cart_ids)))
    if not q.startswith("#"):
        clauses.append(c.email.startswith(q.lower(), autoescape=True))
    return or_(*clauses)


@bp.get("/carts")
@merchant_required
def carts() -> str:
    from app.web import runtime

    store = current_store()
    q = (request.args.get("q") or "").strip()
    if len(q) > MAX_QUERY:
        abort(400, f"q: at most {MAX_QUERY} characters")
    status = request.args.get("status") or ""
    if status and status not in STATUSES:
        abort(400, f"status must be one of: {', '.join(STATUSES)}")
    channel = request.args.get("channel") or ""
    if channel and channel not in CHANNELS:
        abort(400, f"channel must be one of: {', '.join(CHANNELS)}")
    span = day_range(request.args, store.timezone, default_days=None)
    c = t.Cart
    query = select(c).where(c.store_id == store.id)
    if status:
        query = query.where(c.status == status)
    if channel:
        m = t.RecoveryMessage
        query = query.where(exists().where(m.cart_id == c.id, m.channel == channel, m.sent_at.is_not(None)))
    if span is not None:
        start, end = span.utc_bounds()
        query = query.where(c.last_activity_at >= start, c.last_activity_at < end)
    after = request.args.get("after")
    if after:
        at, cart_id = decode_cursor(after)
        query = query.where(tuple_(c.last_activity_at, c.id) < tuple_(at, cart_id))
    query = query.order_by(c.last_activity_at.desc(), c.id.desc()).limit(PAGE + 1)
    with runtime().sessions() as session:
        if q:
            query = query.where(search_clause(session, store.id, q))
        rows = session.scalars(query).all()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    tz = span.tz if span else zone(store.timezone)
    next_args = {k: v for k, v in request.args.items() if k != "after"}
    if more:
        next_args["after"] = encode_cursor(rows[-1].last_activity_at, rows[-1].id)
    return render_template(
        "merchant/carts.html", store=store, rows=rows, q=q, status=status, channel=channel, span=span,
        statuses=STATUSES, channels=CHANNELS, more=more, next_args=next_args, mask=mask,
        when=lambda at: local(at, tz), first_page=not after,
        # relative to /app/carts (one url_for per row cost more than the page's query)
        link_query=f"?{urlencode({'store': store.domain})}" if g.get("operator") else "",
    )  # fmt: skip


@bp.get("/carts/<id:cart_id>")
@merchant_required
def cart(cart_id: int) -> str:
    from app.web import runtime

    store = current_store()
    with runtime().sessions() as session:
        found = session.scalar(select(t.Cart).where(and_(t.Cart.id == cart_id, t.Cart.store_id == store.id)))
        if found is None:  # another store's cart is as absent as a cart that never was
            abort(404, "no such cart in this store")
        events = timeline(session, found, store.timezone)
        # Held back by the plan (recovery/billing): why no sequence started, in the latest period it was looked at.
        held = session.scalar(select(t.PlanCart).where(t.PlanCart.cart_id == found.id, t.PlanCart.outcome == "held")
                              .order_by(t.PlanCart.period_end.desc()).limit(1))  # fmt: skip
    from app.web.merchant.billing import visible
    from recovery.billing.plans import REASONS

    held_reason = REASONS.get(held.reason or "", "not started: held back by the plan") if held is not None else None
    return render_template("merchant/cart.html", store=store, cart=found, events=events, mask=mask,
                           held_reason=held_reason, plan_page=visible())  # fmt: skip
