"""The Performance page: the funnel per step and channel, revenue and recovered carts per day, the holdout lift.

Reads the pre-aggregated daily figures (recovery/measure/figures.py), after recounting this store's changed days,
so it answers in a few milliseconds at any store size. Every figure counts carts ABANDONED in the range.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal

from flask import render_template, request
from sqlalchemy import func, select

from app.web.merchant import bp
from app.web.merchant.charts import bars
from app.web.merchant.context import current_store, merchant_required
from app.web.merchant.ranges import DayRange, day_range
from app.web.merchant.reasons import FLOW_NAMES  # one list of the flows' names
from recovery.measure import figures
from recovery.storage import tables as t
from recovery.measure import lift as lift_stats
from recovery.flows.report import flow_lines

#: Marks one page view recounts at most (the dispatcher recounts the rest within seconds).
REFRESH_LIMIT = 500


def percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


@bp.get("/performance")
@merchant_required
def performance() -> str:
    from app.web import runtime

    store = current_store()
    span = day_range(request.args, store.timezone)
    assert span is not None
    with runtime().sessions.begin() as session:
        figures.refresh(session, store_id=store.id, limit=REFRESH_LIMIT)
    with runtime().sessions() as session:
        fig = figures.read(session, store.id, span.first, span.last)
        flows = flow_lines(session, store.id, *span.utc_bounds())
        older = earlier_range(session, store.id, span) if fig.abandoned == 0 and not request.args.get("from") else None
    # The currency most recovered carts were in, as the dashboard's (carts are priced in the shop's currency;
    # a Currency setting changed since does not turn their revenue into 0 of the new one), else the store's.
    currency = max(fig.recovered_in, key=fig.recovered_in.__getitem__) if any(fig.recovered_in.values()) else (
        store.currency or next(iter(fig.revenue), "USD"))
    revenue = fig.revenue.get(currency, Decimal("0"))
    other_currencies = {c: v for c, v in fig.revenue.items() if c != currency and v}
    report = None
    if fig.holdout_carts and fig.treated_carts:
        aov = lift_stats.average_order(revenue, fig.recovered_in.get(currency, 0))  # as the dashboard and the CLI
        report = lift_stats.report(fig.treated_carts, fig.treated_ordered, fig.holdout_carts, fig.holdout_ordered, aov)
    revenue_title = f"Recovered revenue per day ({currency}), by the day the cart was abandoned"
    carts_title = "Recovered carts per day (ordered after one of our messages), by the day the cart was abandoned"
    charts = [
        (revenue_title, bars([(d.day, float(d.revenue.get(currency, 0))) for d in fig.days], revenue_title,
                             f"Orders of recovered carts, in {currency}; total {revenue:,.2f} {currency}.")),
        (carts_title, bars([(d.day, d.recovered) for d in fig.days], carts_title,
                           f"Carts ordered after one of our messages; total {fig.recovered}.", color="#1a7f37")),
    ]  # fmt: skip
    return render_template(
        "merchant/performance.html", store=store, span=span, fig=fig, currency=currency, revenue=revenue,
        other_currencies=other_currencies, report=report, charts=charts, percent=percent,
        stages=STAGES, flows=flows, flow_names=FLOW_NAMES, estimate=lift_stats.estimate, older=older,
    )  # fmt: skip


def earlier_range(session, store_id: int, span: DayRange) -> DayRange | None:  # type: ignore[no-untyped-def]
    """An empty range with older carts behind it (the demo's data, a store quiet lately): the same number of days
    ending on the day the latest earlier cart was abandoned, for the page to offer. None if there is none."""
    start = span.utc_bounds()[0]
    latest = session.scalar(select(func.max(t.Cart.abandoned_at)).where(t.Cart.store_id == store_id, t.Cart.abandoned_at < start))
    if latest is None:
        return None
    last = (latest if latest.tzinfo else latest.replace(tzinfo=UTC)).astimezone(span.tz).date()
    return DayRange(last - timedelta(days=span.days - 1), last, span.tz)


#: The funnel's stages: (attribute, column heading, what it counts).
STAGES = (
    ("planned", "Planned", "messages planned for the abandoned carts"),
    ("sent", "Sent", "handed to the email/SMS/push provider"),
    ("delivered", "Delivered", "confirmed delivered by the provider, or opened"),
    ("opened", "Opened", "opened at least once (email pixel; clicks count as opens)"),
    ("clicked", "Clicked", "clicked through to the cart at least once"),
    ("ordered", "Ordered", "the cart was ordered after this message was sent (a cart counts at every step it got)"),
)
