"""Each flow's line in the performance report, for the merchant app and the demo:
sent → opened → clicked → ordered, and the lift against the flow's own holdout with its interval.

- sent, opened, clicked: the flow's messages handed to a provider, and of those the ones opened / clicked
  (tracked links: the cart flows' restore link; the cross-sell links to the store directly, so it counts no clicks).
- ordered: sent messages whose shopper (cart, customer or email) placed an order, not cancelled, within
  the store's attribution window after the send. That is "recovered", not "incremental".
- lift: shoppers the flow fired for, treated vs its holdout, each counted as ordered when they ordered
  within the attribution window after the flow fired (recovery/measure/lift.py: Newcombe interval, always-valid test).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from recovery.measure import lift as lift_stats
from recovery.storage import tables as t
from recovery.flows import FLOWS
from recovery.sequence.holdout import HOLDOUT
from recovery.config.store_settings import effective


@dataclass(frozen=True)
class FlowLine:
    flow: str
    enabled: bool
    sent: int
    opened: int
    clicked: int
    ordered: int
    #: Shoppers the flow fired for, treated and held out (None: nothing fired yet).
    lift: lift_stats.LiftReport | None


def flow_lines(
    session: Session, store_id: int, since: datetime | None = None, until: datetime | None = None
) -> list[FlowLine]:
    """One line per flow for this store (optionally only what fired or was sent in [since, until))."""
    store = session.get(t.Store, store_id)
    assert store is not None
    settings = effective(store.settings or {})
    window = timedelta(seconds=settings["attribution_window"])
    m = t.RecoveryMessage
    sent_rows = session.execute(
        select(m.flow, m.sent_at, m.opened_at, m.clicked_at, t.Cart.id, t.Cart.email, t.Cart.customer_id)
        .join(t.Cart, t.Cart.id == m.cart_id)
        .where(m.store_id == store_id, m.flow.in_(FLOWS), m.status == "sent",
               *([m.sent_at >= since] if since else []), *([m.sent_at < until] if until else []))
    ).all()  # fmt: skip
    events = session.execute(
        select(t.FlowEvent.flow, t.FlowEvent.shopper, t.FlowEvent.variant, t.FlowEvent.fired_at, t.Cart.id,
               t.Cart.email, t.Cart.customer_id)
        .join(t.Cart, t.Cart.id == t.FlowEvent.cart_id)
        .where(t.FlowEvent.store_id == store_id, *([t.FlowEvent.fired_at >= since] if since else []),
               *([t.FlowEvent.fired_at < until] if until else []))
    ).all()  # fmt: skip
    starts = [r.sent_at for r in sent_rows] + [e.fired_at for e in events]
    orders = _orders(session, store_id, min(starts)) if starts else []
    lines = []
    for flow in FLOWS:
        mine = [r for r in sent_rows if r.flow == flow]
        ordered = sum(_ordered(orders, r.id, r.email, r.customer_id, r.sent_at, window) for r in mine)
        shoppers: dict[str, list[bool]] = {}
        for e in (e for e in events if e.flow == flow):
            entry = shoppers.setdefault(e.shopper, [e.variant != HOLDOUT, False])
            entry[1] = entry[1] or _ordered(orders, e.id, e.email, e.customer_id, e.fired_at, window)
        report = None
        if shoppers:
            treated = [o for is_treated, o in shoppers.values() if is_treated]
            held = [o for is_treated, o in shoppers.values() if not is_treated]
            report = lift_stats.report(len(treated), sum(treated), len(held), sum(held))
        lines.append(FlowLine(
            flow, bool(settings[flow]), len(mine), sum(1 for r in mine if r.opened_at),
            sum(1 for r in mine if r.clicked_at), ordered, report,
        ))  # fmt: skip
    return lines


def _orders(session: Session, store_id: int, since: datetime) -> Sequence[tuple[int | None, str | None, int | None, datetime]]:
    return session.execute(
        select(t.Order.cart_id, t.Order.email, t.Order.customer_id, t.Order.placed_at).where(
            t.Order.store_id == store_id, t.Order.cancelled_at.is_(None), t.Order.placed_at >= since
        )
    ).all()


def _ordered(orders, cart_id, email, customer_id, start, window) -> bool:  # type: ignore[no-untyped-def]
    return any(
        start <= placed <= start + window
        and ((o_cart is not None and o_cart == cart_id) or (email and o_email == email)
             or (customer_id and o_customer == customer_id))
        for o_cart, o_email, o_customer, placed in orders
    )  # fmt: skip


def format_line(line: FlowLine) -> str:
    """`price_drop  on   sent 12 → opened 5 → clicked 2 → ordered 1 · lift +3.0 points [−4.1, +9.8], 40 vs 5 shoppers`"""
    funnel = f"sent {line.sent} → opened {line.opened} → clicked {line.clicked} → ordered {line.ordered}"
    r = line.lift
    if r is None:
        lift = "nothing fired yet"
    elif r.holdout_carts == 0 or r.treated_carts == 0:
        lift = (f"no lift yet: {r.treated_ordered}/{r.treated_carts} treated and {r.holdout_ordered}/{r.holdout_carts} "
                "held-out shoppers ordered")
    else:
        lift = (f"lift {r.lift * 100:+.1f} points, 95% CI [{r.lift_low * 100:+.1f}, {r.lift_high * 100:+.1f}] "
                f"({r.treated_ordered}/{r.treated_carts} treated vs {r.holdout_ordered}/{r.holdout_carts} holdout "
                f"shoppers ordered; {r.verdict})")
    return f"{line.flow:<19} {'on ' if line.enabled else 'off'}  {funnel} · {lift}"
