"""The plans CartResQ is sold by, and the words the policy uses (statuses, reasons)."""

from __future__ import annotations

from dataclasses import dataclass
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

#: Shopify's and our billing interval (EVERY_30_DAYS); a period that passed without news rolls by this much.
PERIOD = timedelta(days=30)
TRIAL_DAYS = 14
#: Notices: the share of the allowance at which the merchant is told (banner and one email each per period).
NOTICE_SHARES = (80, 100)


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    #: USD per 30 days; None: priced by contract (Enterprise).
    price: Decimal | None
    #: Carts started per billing period; None: unlimited.
    allowance: int | None


PLANS: dict[str, Plan] = {
    p.key: p
    for p in (
        Plan("starter", "Starter", Decimal("29"), 500),
        Plan("growth", "Growth", Decimal("79"), 2000),
        Plan("pro", "Pro", Decimal("179"), 10000),
        Plan("enterprise", "Enterprise", None, None),
    )
}
#: Plans a merchant can buy on their own (Enterprise is "contact us").
SELF_SERVE = ("starter", "growth", "pro")

#: Statuses under which new sequences start. `past_due`: Stripe is still retrying the payment (the banner says
#: so); `unpaid`/`canceled` on Stripe and FROZEN/CANCELLED/EXPIRED/DECLINED on Shopify stop new sequences.
SERVING = ("active", "trial", "past_due")

#: Why a cart was abandoned without a sequence because of its plan (plan_usage_carts.reason → dashboard text).
REASONS = {
    "plan_limit": "not started: plan limit reached",
    "no_plan": "not started: no active plan",
}

#: The counter's storage value for an unlimited plan: no store reaches it.
UNLIMITED = 2**31 - 1


def allowance(plan_key: str) -> int:
    plan = PLANS.get(plan_key)
    return UNLIMITED if plan is None or plan.allowance is None else plan.allowance


def plan_by_name(name: str | None) -> Plan | None:
    """A subscription's name ("CartResQ Growth") or a price's lookup key ("growth") → the plan."""
    text = (name or "").strip().lower()
    for plan in PLANS.values():
        if text == plan.key or text.endswith(" " + plan.key) or text == f"cartresq {plan.key}":
            return plan
    return None


def current_period_end(period_end: datetime | None, now: datetime) -> datetime | None:
    """The end of the period `now` falls in: a provider that renewed without telling us (Shopify sends no
    webhook on renewal) is assumed to have rolled 30 days at a time from the last end it named."""
    if period_end is None:
        return None
    if period_end > now:
        return period_end
    steps = (now - period_end) // PERIOD + 1
    return period_end + steps * PERIOD


def trial_days_left(billing: object | None, now: datetime) -> int:
    """Days of free trial a new subscription may still carry: the whole trial for a store that never
    subscribed, what is left of a running one, none once a store has had a subscription (no trial again by
    switching plans or cancelling and coming back)."""
    if billing is None:
        return TRIAL_DAYS
    ends = getattr(billing, "trial_ends_at", None)
    if ends is None:
        return 0
    ends = ends if ends.tzinfo else ends.replace(tzinfo=UTC)
    return max(0, math.ceil((ends - now).total_seconds() / 86400))
