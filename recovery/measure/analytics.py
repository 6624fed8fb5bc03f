"""What the merchant sees: recovered revenue, and lift measured against the holdout group."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recovery.measure import lift as lift_stats
from recovery.storage import tables as t

ORDERED = ("recovered", "completed")


@dataclass
class GroupRate:
    carts: int = 0
    ordered: int = 0

    @property
    def rate(self) -> float:
        return self.ordered / self.carts if self.carts else 0.0


@dataclass
class Summary:
    carts: int = 0
    abandoned: int = 0
    holdout: GroupRate = field(default_factory=GroupRate)
    treated: GroupRate = field(default_factory=GroupRate)
    messages_sent: dict[str, int] = field(default_factory=dict)
    messages_cancelled: int = 0
    recovered_carts: int = 0
    recovered_revenue: dict[str, Decimal] = field(default_factory=dict)
    #: Abandoned carts the plan limit kept from starting (not in `abandoned`, nor in either group).
    held_back: int = 0
    #: Treated vs holdout per shopper (the randomisation unit), with intervals; None before any holdout.
    lift_report: lift_stats.LiftReport | None = None
    currency: str = ""

    @property
    def lift(self) -> float:
        """Percentage points of abandoned carts that ordered, treated minus holdout."""
        return (self.treated.rate - self.holdout.rate) * 100


def summarize(session: Session, store_id: int | None = None) -> Summary:
    def scoped(query, model):  # type: ignore[no-untyped-def]
        return query if store_id is None else query.where(model.store_id == store_id)

    s = Summary()
    s.carts = session.scalar(scoped(select(func.count()).select_from(t.Cart), t.Cart)) or 0
    # Carts the plan limit held back (recovery/billing): abandoned, never started, so in neither group. Which
    # carts are held depends on when they came, not on their group, so leaving them out keeps the lift fair.
    held = select(t.PlanCart.cart_id).where(t.PlanCart.cart_id == t.Cart.id, t.PlanCart.outcome == "held").exists()
    s.held_back = session.scalar(scoped(select(func.count()).select_from(t.Cart).where(held), t.Cart)) or 0
    # Every cart that was ever abandoned, with its group and whether it ended in an order afterwards,
    # and its shopper's orders before the abandonment (pre-period behaviour, for CUPED).
    earlier = (
        select(func.count(t.Order.id))
        .where(t.Order.store_id == t.Cart.store_id, t.Order.email == t.Cart.email, t.Order.placed_at < t.Cart.abandoned_at)
        .correlate(t.Cart)
        .scalar_subquery()
    )
    rows = session.execute(
        scoped(
            select(
                t.Cart.status, t.ExperimentAssignment.variant, t.Cart.id, t.ExperimentAssignment.unit,
                t.Cart.total, t.Cart.currency, earlier,
            ).join(
                t.ExperimentAssignment,
                (t.ExperimentAssignment.cart_id == t.Cart.id) & (t.ExperimentAssignment.experiment == "holdout"),
            ).where(~held),
            t.Cart,
        )
    ).all()
    for status, variant, *_ in rows:
        group = s.holdout if variant == "holdout" else s.treated
        group.carts += 1
        group.ordered += status in ORDERED
    s.abandoned = len(rows)
    sent = session.execute(
        scoped(
            select(t.RecoveryMessage.channel, func.count())
            .where(t.RecoveryMessage.status == "sent")
            .group_by(t.RecoveryMessage.channel),
            t.RecoveryMessage,
        )
    ).all()
    s.messages_sent = dict(Counter({channel: n for channel, n in sent}))
    s.messages_cancelled = (
        session.scalar(
            scoped(select(func.count()).where(t.RecoveryMessage.status == "cancelled"), t.RecoveryMessage)
        )
        or 0
    )
    # Summed in Python: SQLite has no decimal type and would sum through floats. Carts only: an order
    # with no cart (a second order after a cross-sell email) is no recovered cart; flows report their own.
    recovered = session.execute(
        scoped(
            select(t.Order.currency, t.Order.total).where(
                t.Order.attribution == "recovered", t.Order.cancelled_at.is_(None), t.Order.cart_id.is_not(None)
            ),
            t.Order,
        )
    ).all()
    orders: Counter[str] = Counter()
    for currency, total in recovered:
        s.recovered_carts += 1
        orders[currency] += 1
        s.recovered_revenue[currency] = s.recovered_revenue.get(currency, Decimal("0")) + total
    s.lift_report, s.currency = _lift(rows, s.recovered_revenue, orders)
    return s


def _lift(rows, revenue: dict[str, Decimal], orders: Counter[str]) -> tuple[lift_stats.LiftReport | None, str]:  # type: ignore[no-untyped-def]
    """The lift per shopper: a shopper ordered if any of their abandoned carts did; incremental revenue priced
    at the average recovered order in the carts' main currency (lift.average_order, as the Performance page)."""
    shoppers: dict[str, list] = {}  # type: ignore[type-arg]
    currencies: Counter[str] = Counter()
    for status, variant, cart_id, unit, _total, currency, earlier in rows:
        key = unit or f"cart:{cart_id}"
        entry = shoppers.setdefault(key, [variant != "holdout", False, 0])
        entry[1] = entry[1] or status in ORDERED
        entry[2] = max(entry[2], earlier or 0)
        currencies[currency] += 1
    if not shoppers:
        return None, ""
    currency = currencies.most_common(1)[0][0]
    treated = np.array([e[0] for e in shoppers.values()])
    ordered = np.array([float(e[1]) for e in shoppers.values()])
    pre = np.array([float(e[2]) for e in shoppers.values()])
    has_pre = bool(np.var(pre) > 0 and treated.sum() > 1 and (~treated).sum() > 1)
    report = lift_stats.report(
        int(treated.sum()), int(ordered[treated].sum()), int((~treated).sum()), int(ordered[~treated].sum()),
        lift_stats.average_order(revenue.get(currency, 0), orders[currency]), pre=(ordered, pre, treated) if has_pre else None,
    )  # fmt: skip
    return report, currency


def format_summary(s: Summary) -> str:
    revenue = ", ".join(f"{amount} {currency}" for currency, amount in sorted(s.recovered_revenue.items())) or "0"
    channels = ", ".join(f"{c}: {n}" for c, n in sorted(s.messages_sent.items())) or "none"
    return "\n".join(
        [
            f"carts                 {s.carts}",
            f"abandoned             {s.abandoned} (holdout {s.holdout.carts}, treated {s.treated.carts})",
            f"messages sent         {channels}; cancelled before sending: {s.messages_cancelled}",
            f"recovered carts       {s.recovered_carts}, revenue {revenue}",
            f"ordered after abandon treated {s.treated.rate:.1%} vs holdout {s.holdout.rate:.1%}"
            f" (lift {s.lift:+.1f} points, per cart)",
            "attributed revenue    the recovered revenue above: orders after a message, including"
            " shoppers who would have bought anyway",
            *(["holdout experiment, per shopper:"] + ["  " + line for line in lift_stats.lines(s.lift_report, s.currency)]
              if s.lift_report is not None else []),
        ]
    )
