"""What a payment provider says about a store's subscription, applied to `store_billing`.

Connectors translate their words (Shopify's AppSubscriptionStatus, Stripe's subscription status) into
`PlanChanged`; this module is the one place that decides what the store's plan then is. An upgrade applies
at once: the next abandoner pass reads the new plan, and its allowance replaces the old one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from recovery.storage import tables as t
from recovery.billing.plans import PLANS, SERVING
from recovery.model import PlanChanged


def apply_plan_change(session: Session, store_id: int, change: PlanChanged, now: datetime) -> str:
    """Upsert the store's plan; returns what happened (for the delivery log). Caller commits."""
    row = session.get(t.StoreBilling, store_id, with_for_update=True)
    if change.plan is not None and change.plan not in PLANS:
        return f"ignored: unknown plan {change.plan[:20]}"
    if row is not None:
        if change.event_at and row.event_at and change.event_at < row.event_at and change.subscription_id == row.subscription_id:
            return "stale: a newer subscription state is stored"
        if (
            change.subscription_id != row.subscription_id
            and change.status not in SERVING
            and row.status in SERVING
        ):
            # e.g. the old subscription's CANCELLED after an upgrade replaced it: the new one stands.
            return f"ignored: subscription {change.status} while another is {row.status}"
    if row is None:
        if change.plan is None:
            return "ignored: no plan named"
        row = t.StoreBilling(store_id=store_id, provider=change.provider, plan=change.plan, status=change.status)
        session.add(row)
    row.provider, row.status = change.provider, change.status
    if change.plan is not None:
        row.plan = change.plan
    if change.subscription_id is not None:
        row.subscription_id = change.subscription_id
    if change.customer_id is not None:
        row.customer_id = change.customer_id
    if change.period_end is not None:
        row.period_end = change.period_end
    if change.trial_ends_at is not None:
        row.trial_ends_at = change.trial_ends_at
    if change.contact_email:
        row.contact_email = change.contact_email
    row.event_at = max(filter(None, (row.event_at, change.event_at)), default=None)
    row.updated_at = now
    session.flush()
    return f"plan {row.plan} {row.status}"
