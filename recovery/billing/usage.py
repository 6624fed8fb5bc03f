"""The plan limit, checked where a cart's sequence starts (recovery/sequence/abandonment.py), and the usage figures.

How usage is counted: one row per (store, billing period) in `plan_usage`, and one per (cart, period) in
`plan_usage_carts`. In the abandoner's transaction, with the carts' rows already locked, each store's carts
that have not counted yet in this period ask for slots with ONE statement (`_GRANT`):

    UPDATE plan_usage SET used = used + <grant>, granted = <grant>, allowance = :allowance, ...
    WHERE store_id = :store_id AND period_end = :period_end RETURNING granted, used

where <grant> = min(:wanted, max(:allowance - used, 0)) is computed from the row's *old* values. The UPDATE
takes the row lock; a second dispatcher's UPDATE waits for it, then (PostgreSQL re-reads the updated row)
computes its grant from the new `used`: two workers never both pass the last slot. The first `granted` carts
(oldest abandonment first) count; the rest are held back ("not started: plan limit reached").
The (cart, period) row makes a cart count once per period, however often it is abandoned again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.billing.plans import PERIOD, PLANS, REASONS, SERVING, allowance, current_period_end
from recovery.storage.db import insert_for
from recovery.storage.types import UTCDateTime

_GRANT = text("""
UPDATE plan_usage SET
    used = used + CASE WHEN :allowance - used <= 0 THEN 0 WHEN :allowance - used < :wanted THEN :allowance - used
                       ELSE :wanted END,
    granted = CASE WHEN :allowance - used <= 0 THEN 0 WHEN :allowance - used < :wanted THEN :allowance - used
                   ELSE :wanted END,
    allowance = :allowance,
    notice_80_at = CASE WHEN notice_80_at IS NULL AND 5 * (used + :wanted) >= 4 * :allowance THEN :now
                        ELSE notice_80_at END,
    notice_100_at = CASE WHEN notice_100_at IS NULL AND used + :wanted >= :allowance THEN :now
                         ELSE notice_100_at END
WHERE store_id = :store_id AND period_end = :period_end
RETURNING granted, used
""").bindparams(bindparam("period_end", type_=UTCDateTime()), bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True)
class PlanLimits:
    """The limit policy for the platforms that are billed (CARTRESQ_BILLING=on and a payment path)."""

    platforms: frozenset[str]

    def applies(self, store: t.Store) -> bool:
        return store.platform in self.platforms

    def admit(
        self, session: Session, stores: Mapping[int, t.Store], carts: Sequence[t.Cart], now: datetime
    ) -> dict[int, str]:
        """Count `carts` (whose first message is about to be planned; holdout carts included) against their
        stores' plans. Returns the carts held back, with their reason (plans.REASONS); the others counted.
        The caller holds the carts' row locks and commits: usage and plan are one transaction."""
        billed = [c for c in carts if self.applies(stores[c.store_id])]
        if not billed:
            return {}
        by_store: dict[int, list[t.Cart]] = {}
        for cart in sorted(billed, key=lambda c: (c.abandon_at or now, c.id)):
            by_store.setdefault(cart.store_id, []).append(cart)
        plans = {b.store_id: b for b in session.scalars(select(t.StoreBilling).where(t.StoreBilling.store_id.in_(by_store)))}
        earlier = {
            (row.cart_id, row.period_end): row.outcome
            for row in session.execute(
                select(t.PlanCart.cart_id, t.PlanCart.period_end, t.PlanCart.outcome).where(
                    t.PlanCart.cart_id.in_([c.id for c in billed])
                )
            )
        }
        held: dict[int, str] = {}
        records: list[dict[str, object]] = []
        for store_id, store_carts in by_store.items():
            billing = plans.get(store_id)
            period = period_of(stores[store_id], billing, now)
            if billing is None or billing.status not in SERVING:
                for cart in store_carts:
                    held[cart.id] = "no_plan"
                    records.append(_record(cart, period, "held", "no_plan", now))
                continue
            wanted = [c for c in store_carts if earlier.get((c.id, period)) != "counted"]
            if not wanted:
                continue
            granted = grant(session, store_id, period, allowance(billing.plan), len(wanted), now)
            for i, cart in enumerate(wanted):
                if i < granted:
                    records.append(_record(cart, period, "counted", None, now))
                else:
                    held[cart.id] = "plan_limit"
                    records.append(_record(cart, period, "held", "plan_limit", now))
        if records:  # Core, one cached statement, executemany: the ORM's bulk path cost more than the rows
            session.connection().execute(_record_outcomes(session.get_bind().dialect.name), records)
        return held


@functools.cache
def _record_outcomes(dialect: str) -> Any:
    stmt = insert_for(dialect)(t.PlanCart.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["cart_id", "period_end"],
        set_={"outcome": stmt.excluded.outcome, "reason": stmt.excluded.reason, "at": stmt.excluded.at},
    )


def grant(session: Session, store_id: int, period_end: datetime, allowance_: int, wanted: int, now: datetime) -> int:
    """Ask for `wanted` slots of the store's period; returns how many were granted (race-free, see above)."""
    insert = insert_for(session.get_bind().dialect.name)(t.PlanUsage)
    session.execute(
        insert.values(store_id=store_id, period_end=period_end, allowance=allowance_, used=0, granted=0)
        .on_conflict_do_nothing()
    )
    row = session.execute(
        _GRANT, {"store_id": store_id, "period_end": period_end, "allowance": allowance_, "wanted": wanted, "now": now}
    ).one()
    return int(row.granted)


def _record(cart: t.Cart, period: datetime, outcome: str, reason: str | None, now: datetime) -> dict[str, object]:
    return {"cart_id": cart.id, "period_end": period, "store_id": cart.store_id, "outcome": outcome, "reason": reason, "at": now}


def period_of(store: t.Store, billing: t.StoreBilling | None, now: datetime) -> datetime:
    """The end of the billing period `now` falls in: the provider's, or 30-day periods from the install."""
    named = current_period_end(billing.period_end if billing else None, now)
    if named is not None:
        return named
    end = current_period_end(store.installed_at + PERIOD, now)
    assert end is not None
    return end


def limits_for(billing: bool, platforms: Iterable[str]) -> PlanLimits | None:
    """None (no check at all, not even a query) when billing is off or no platform has a payment path."""
    chosen = frozenset(platforms)
    return PlanLimits(chosen) if billing and chosen else None


# --- what the merchant app shows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    plan: str | None  # plans key, None without a plan
    status: str | None
    provider: str | None
    period_end: datetime
    used: int
    allowance: int | None  # None: unlimited
    held: int  # carts held back this period (any reason)
    trial_ends_at: datetime | None

    @property
    def percent(self) -> int:
        if not self.allowance:
            return 0
        return min(100, self.used * 100 // self.allowance)

    @property
    def serving(self) -> bool:
        return self.status in SERVING


def usage(session: Session, store: t.Store, now: datetime) -> Usage:
    billing = session.get(t.StoreBilling, store.id)
    period = period_of(store, billing, now)
    row = session.get(t.PlanUsage, (store.id, period))
    held = session.scalar(
        select(func.count()).where(
            t.PlanCart.store_id == store.id, t.PlanCart.period_end == period, t.PlanCart.outcome == "held"
        )
    )
    plan = PLANS.get(billing.plan) if billing else None
    return Usage(
        plan=plan.key if plan else None,
        status=billing.status if billing else None,
        provider=billing.provider if billing else None,
        period_end=period,
        used=row.used if row else 0,
        allowance=plan.allowance if plan else 0,
        held=int(held or 0),
        trial_ends_at=billing.trial_ends_at if billing else None,
    )


def plan_banner(session: Session, store: t.Store, now: datetime, limits: PlanLimits | None) -> str | None:
    """The merchant app's banner: None when there is nothing to say (or billing does not apply)."""
    if limits is None or not limits.applies(store):
        return None
    u = usage(session, store, now)
    if not u.serving:
        return "No active plan: new carts are not being recovered. Choose a plan to start."
    if u.allowance is None:
        return None
    resets = u.period_end.strftime("%Y-%m-%d")
    if u.used >= u.allowance:
        return (f"Plan limit reached: {u.used} of {u.allowance} carts started this period; {u.held} abandoned carts "
                f"held back (not started). Upgrade to resume at once, or wait for the reset on {resets}.")
    if u.used * 5 >= u.allowance * 4:
        return f"{u.percent} % of this period's plan used: {u.used} of {u.allowance} carts started (resets {resets})."
    if u.status == "past_due":
        return "Your last payment failed: update your payment method to keep recovering carts."
    return None


def held_reason(session: Session, cart_id: int) -> str | None:
    """The dashboard's text for a cart abandoned without a sequence because of its plan, or None."""
    reason = session.scalar(
        select(t.PlanCart.reason).where(t.PlanCart.cart_id == cart_id, t.PlanCart.outcome == "held")
        .order_by(t.PlanCart.period_end.desc()).limit(1)
    )
    return REASONS.get(reason or "")
