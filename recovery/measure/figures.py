"""Daily figures per store, kept by recounting what changed (the merchant's Performance page reads them).

How they stay right (an incremental job, fed by marks written in the changing transaction itself):
- Database triggers (migration 0118) append a `figure_marks` row (store, the cart's abandonment time) in
  the same transaction as any change that moves a figure: a rolled-back change leaves no mark, a committed
  one always does, whichever code path (ORM or raw SQL, worker, web or CLI) made it.
- `refresh` takes marks (SKIP LOCKED on PostgreSQL), recounts each marked (store, local day) from the base
  tables, writes the day's rows, and deletes exactly the marks it read, all in one transaction. A mark it
  read was committed before its recount began, so the recount sees that change; a mark committed later
  stays for the next run. A recount is a recount: running it again (a retried job, two dispatchers, a
  crash before commit) gives the same rows. Concurrent recounts of one day serialize on an advisory lock.
- The dispatcher runs `refresh` every few seconds; the Performance page refreshes its own store first.

Every figure counts carts by the local day (store time zone) they were ABANDONED: "sent" on 3 May is
messages sent for carts abandoned on 3 May, whenever they went out. That keeps each funnel consistent
(an open never outnumbers its sends) and lets a late event correct its own day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Date, and_, case, cast, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from recovery.flows import FLOW_STEP_BASE
from recovery.storage import tables as t

ORDERED = ("recovered", "completed")
COUNTS = ("planned", "sent", "delivered", "opened", "clicked", "ordered")
CART_COUNTS = ("abandoned", "recovered", "treated_carts", "treated_ordered", "holdout_carts", "holdout_ordered")
#: How often the dispatcher refreshes.
EVERY = timedelta(seconds=5)
#: How many marks one refresh takes; the rest wait for the next run.
BATCH = 5000
LOCK_SPACE = 0x66690000_00000000  # advisory lock keys of figure recounts: this | store_id << 20 | day


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a local day, in UTC (23 or 25 hours long on DST days)."""
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return start, end


def _sum_if(condition):  # type: ignore[no-untyped-def]
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _funnel_query(day_expr, where):  # type: ignore[no-untyped-def]
    m, c = t.RecoveryMessage, t.Cart
    sent = m.sent_at.is_not(None)
    return (
        select(
            c.store_id, day_expr.label("day"), m.step, m.channel,
            func.count().label("planned"),
            _sum_if(sent).label("sent"),
            _sum_if(sent & ((m.delivery_status == "delivered") | m.opened_at.is_not(None) | m.clicked_at.is_not(None))).label("delivered"),
            _sum_if(sent & m.opened_at.is_not(None)).label("opened"),
            _sum_if(sent & m.clicked_at.is_not(None)).label("clicked"),
            _sum_if(sent & (c.status == "recovered") & (c.recovered_at >= m.sent_at)).label("ordered"),
        )
        .join(c, c.id == m.cart_id)
        .where(*where)
        .group_by(c.store_id, day_expr, m.step, m.channel)
    )  # fmt: skip


def _cart_query(day_expr, where):  # type: ignore[no-untyped-def]
    c, a = t.Cart, t.ExperimentAssignment
    ordered = c.status.in_(ORDERED)
    treated = a.variant.is_not(None) & (a.variant != "holdout")
    return (
        select(
            c.store_id, day_expr.label("day"), c.currency,
            func.count().label("abandoned"),
            _sum_if(c.status == "recovered").label("recovered"),
            _sum_if(treated).label("treated_carts"),
            _sum_if(treated & ordered).label("treated_ordered"),
            _sum_if(a.variant == "holdout").label("holdout_carts"),
            _sum_if((a.variant == "holdout") & ordered).label("holdout_ordered"),
        )
        .outerjoin(a, and_(a.cart_id == c.id, a.experiment == "holdout"))
        .where(*where)
        .group_by(c.store_id, day_expr, c.currency)
    )  # fmt: skip


def _revenue_rows(session: Session, day_expr, where) -> dict[tuple[int, date, str], Decimal]:  # type: ignore[no-untyped-def]
    """Recovered carts' orders (not cancelled, in the cart's currency) per (store, day, currency)."""
    c, o = t.Cart, t.Order
    joined = (o.cart_id == c.id) & (o.attribution == "recovered") & o.cancelled_at.is_(None) & (o.currency == c.currency)
    where = [*where, c.status == "recovered"]
    out: dict[tuple[int, date, str], Decimal] = defaultdict(Decimal)
    if session.get_bind().dialect.name == "postgresql":  # numeric sums are exact there
        query = select(c.store_id, day_expr, c.currency, func.sum(o.total)).join(o, joined).where(*where)
        for store_id, day, currency, total in session.execute(query.group_by(c.store_id, day_expr, c.currency)):
            out[(store_id, _as_date(day), currency)] += total or Decimal("0")
        return out
    # SQLite keeps money as text and would sum through floats: add the few rows up here.
    for store_id, day, currency, total in session.execute(select(c.store_id, day_expr, c.currency, o.total).join(o, joined).where(*where)):
        out[(store_id, _as_date(day), currency)] += total
    return out


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def recount(session: Session, store_id: int, day: date, tz: ZoneInfo) -> None:
    """Replace one store's figures of one local day by a count from the base tables."""
    start, end = day_bounds(day, tz)
    where = [t.Cart.store_id == store_id, t.Cart.abandoned_at >= start, t.Cart.abandoned_at < end]
    day_expr = cast(literal(day, Date), Date) if session.get_bind().dialect.name == "postgresql" else literal(day.isoformat())
    rows = _figure_rows(session, day_expr, where)
    session.execute(delete(t.DailyFigure).where(t.DailyFigure.store_id == store_id, t.DailyFigure.day == day))
    if rows:
        session.execute(insert(t.DailyFigure), rows)


def _figure_rows(session: Session, day_expr, where) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    zero = dict.fromkeys((*COUNTS, *CART_COUNTS), 0)
    rows = [
        dict(zero, store_id=r.store_id, day=_as_date(r.day), step=r.step, channel=r.channel, currency="",
             recovered_revenue=Decimal("0"), **{k: int(getattr(r, k)) for k in COUNTS})
        for r in session.execute(_funnel_query(day_expr, where))
    ]  # fmt: skip
    revenue = _revenue_rows(session, day_expr, where)
    for r in session.execute(_cart_query(day_expr, where)):
        key = (r.store_id, _as_date(r.day), r.currency)
        rows.append(dict(zero, store_id=r.store_id, day=key[1], step=0, channel="", currency=r.currency,
                         recovered_revenue=revenue.get(key, Decimal("0")), **{k: int(getattr(r, k)) for k in CART_COUNTS}))  # fmt: skip
    return rows


def refresh(session: Session, store_id: int | None = None, limit: int = BATCH) -> int:
    """Recount the days marked as changed (one store's, or any); returns how many days were recounted."""
    pg = session.get_bind().dialect.name == "postgresql"
    query = select(t.FigureMark.id, t.FigureMark.store_id, t.FigureMark.at).order_by(t.FigureMark.id).limit(limit)
    if store_id is not None:
        query = query.where(t.FigureMark.store_id == store_id)
    if pg:
        query = query.with_for_update(skip_locked=True)
    marks = session.execute(query).all()
    if not marks:
        return 0
    zones = {s: zone(tz) for s, tz in session.execute(
        select(t.Store.id, t.Store.timezone).where(t.Store.id.in_({m.store_id for m in marks}))
    )}  # fmt: skip
    days = sorted({(m.store_id, m.at.astimezone(zones[m.store_id]).date()) for m in marks if m.store_id in zones})
    for sid, day in days:  # in key order: two refreshes never wait on each other in a cycle
        if pg:
            session.execute(select(func.pg_advisory_xact_lock(LOCK_SPACE | (sid << 20) | day.toordinal())))
        recount(session, sid, day, zones[sid])
    ids = [m.id for m in marks]
    for n in range(0, len(ids), 1000):
        session.execute(delete(t.FigureMark).where(t.FigureMark.id.in_(ids[n : n + 1000])))
    return len(days)


@dataclass
class StepFigures:
    step: int
    channel: str
    planned: int = 0
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    ordered: int = 0


@dataclass
class DayFigures:
    day: date
    abandoned: int = 0
    recovered: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class Figures:
    """A store's figures over [first, last] (local days of abandonment)."""

    first: date
    last: date
    steps: list[StepFigures]
    days: list[DayFigures]
    abandoned: int = 0
    recovered: int = 0
    revenue: dict[str, Decimal] = field(default_factory=dict)
    #: Recovered carts per currency (the count behind `revenue`, for lift.average_order).
    recovered_in: dict[str, int] = field(default_factory=dict)
    treated_carts: int = 0
    treated_ordered: int = 0
    holdout_carts: int = 0
    holdout_ordered: int = 0

    def by_channel(self) -> list[StepFigures]:
        totals: dict[str, StepFigures] = {}
        for s in self.steps:
            row = totals.setdefault(s.channel, StepFigures(0, s.channel))
            for key in COUNTS:
                setattr(row, key, getattr(row, key) + getattr(s, key))
        return sorted(totals.values(), key=lambda r: r.channel)


def read(session: Session, store_id: int, first: date, last: date) -> Figures:
    """Sum one store's daily rows over a range: the funnel summed in SQL per (step, channel), the cart-level
    rows (one a day and currency) summed here (SQLite keeps money as text). A primary-key range scan."""
    f = t.DailyFigure
    in_range = (f.store_id == store_id, f.day >= first, f.day <= last)
    funnel = session.execute(
        select(f.step, f.channel, *(func.sum(getattr(f, k)) for k in COUNTS))
        # The cart sequence's steps only: a flow's message is a step from FLOW_STEP_BASE on, with its own line.
        .where(*in_range, f.step > 0, f.step < FLOW_STEP_BASE).group_by(f.step, f.channel).order_by(f.step, f.channel)
    ).all()  # fmt: skip
    days = {first + timedelta(days=n): DayFigures(first + timedelta(days=n)) for n in range((last - first).days + 1)}
    out = Figures(first, last, [StepFigures(r[0], r[1], *(int(v or 0) for v in r[2:])) for r in funnel], list(days.values()))
    cart_rows = session.execute(
        select(f.day, f.currency, f.recovered_revenue, *(getattr(f, k) for k in CART_COUNTS)).where(*in_range, f.step == 0)
    ).all()
    for day, currency, revenue, *counts in cart_rows:
        d = days[_as_date(day)]
        d.abandoned += counts[0]
        d.recovered += counts[1]
        d.revenue[currency] = d.revenue.get(currency, Decimal("0")) + revenue
        out.revenue[currency] = out.revenue.get(currency, Decimal("0")) + revenue
        out.recovered_in[currency] = out.recovered_in.get(currency, 0) + counts[1]
        for key, value in zip(CART_COUNTS, counts, strict=True):
            setattr(out, key, getattr(out, key) + value)
    return out


def count_directly(session: Session, store_id: int, days: Iterable[date], tz: ZoneInfo) -> list[dict[str, object]]:
    """The figures of some days counted from the base tables, without touching daily_figures (for checks)."""
    rows: list[dict[str, object]] = []
    for day in days:
        start, end = day_bounds(day, tz)
        where = [t.Cart.store_id == store_id, t.Cart.abandoned_at >= start, t.Cart.abandoned_at < end]
        day_expr = cast(literal(day, Date), Date) if session.get_bind().dialect.name == "postgresql" else literal(day.isoformat())
        rows += _figure_rows(session, day_expr, where)
    return rows
