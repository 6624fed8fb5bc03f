"""Shopify Billing API: one 30-day recurring subscription per plan, read back from the app installation.

- `create_subscription`: `appSubscriptionCreate` (trialDays 14, returnUrl into the embedded app, `test` for
  development stores or SHOPIFY_BILLING_TEST=1); the merchant approves on the returned confirmation URL.
- `read_subscription`: `currentAppInstallation { activeSubscriptions }` (and the shop's email, for notices),
  as a `PlanChanged` for recovery/billing (None: no active subscription).
- `normalize_subscription_update`: the `app_subscriptions/update` webhook, as a `PlanChanged`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.shopify.admin import AdminClient, AdminError
from recovery.billing.plans import PLANS, TRIAL_DAYS, Plan, plan_by_name
from recovery.model import NormalizeResult, PlanChanged

#: Shopify's AppSubscriptionStatus → recovery.billing.plans statuses (ACCEPTED is a deprecated pre-ACTIVE).
STATUSES = {
    "ACTIVE": "active", "ACCEPTED": "pending", "PENDING": "pending", "FROZEN": "frozen",
    "CANCELLED": "cancelled", "DECLINED": "cancelled", "EXPIRED": "cancelled",
}  # fmt: skip

CREATE = """
mutation CartResQSubscribe($name: String!, $returnUrl: URL!, $trialDays: Int, $test: Boolean,
                           $lineItems: [AppSubscriptionLineItemInput!]!) {
  appSubscriptionCreate(name: $name, returnUrl: $returnUrl, trialDays: $trialDays, test: $test,
                        lineItems: $lineItems, replacementBehavior: APPLY_IMMEDIATELY) {
    appSubscription { id status }
    confirmationUrl
    userErrors { field message }
  }
}
"""

ACTIVE = """
query CartResQSubscription {
  shop { email }
  currentAppInstallation {
    activeSubscriptions { id name status test trialDays createdAt currentPeriodEnd }
  }
}
"""


class BillingError(Exception):
    """Shopify refused the subscription (its userErrors), or could not be reached."""


def subscription_name(plan: Plan) -> str:
    return f"CartResQ {plan.name}"


def create_subscription(admin: AdminClient, shop: str, plan_key: str, return_url: str, *, test: bool,
                        trial_days: int = TRIAL_DAYS) -> str:
    """The confirmation URL the merchant approves the charge on."""
    plan = PLANS[plan_key]
    if plan.price is None:
        raise BillingError(f"{plan.name} is priced by contract")
    try:
        dev_store = _dev_store(admin, shop)
        data = admin.execute(shop, CREATE, {
            "name": subscription_name(plan), "returnUrl": return_url, "trialDays": trial_days,
            "test": test or dev_store,
            "lineItems": [{"plan": {"appRecurringPricingDetails": {
                "price": {"amount": str(plan.price), "currencyCode": "USD"}, "interval": "EVERY_30_DAYS"}}}],
        })  # fmt: skip
    except AdminError as exc:
        raise BillingError(str(exc)) from None
    result = data.get("appSubscriptionCreate") or {}
    errors = result.get("userErrors") or []
    if errors or not result.get("confirmationUrl"):
        raise BillingError("; ".join(str(e.get("message")) for e in errors) or "no confirmation URL")
    return str(result["confirmationUrl"])


def _dev_store(admin: AdminClient, shop: str) -> bool:
    data = admin.execute(shop, "query CartResQShopPlan { shop { plan { partnerDevelopment } } }")
    return bool(((data.get("shop") or {}).get("plan") or {}).get("partnerDevelopment"))


def read_subscription(admin: AdminClient, shop: str, now: datetime | None = None) -> PlanChanged:
    """The installation's active subscription as a plan change; status "cancelled" (no plan) when none."""
    data = admin.execute(shop, ACTIVE)
    email = (data.get("shop") or {}).get("email")
    subs = ((data.get("currentAppInstallation") or {}).get("activeSubscriptions")) or []
    ours = [s for s in subs if plan_by_name(s.get("name")) is not None]
    if not ours:
        return PlanChanged(provider="shopify", status="cancelled", plan=None, contact_email=email)
    sub = ours[-1]
    created = _time(sub.get("createdAt"))
    trial_end = created + timedelta(days=int(sub.get("trialDays") or 0)) if created and sub.get("trialDays") else None
    status = STATUSES.get(str(sub.get("status")), "pending")
    now = now or datetime.now(UTC)
    if status == "active" and trial_end and trial_end > now:
        status = "trial"
    plan = plan_by_name(sub.get("name"))
    return PlanChanged(
        provider="shopify", status=status, plan=plan.key if plan else None, subscription_id=str(sub["id"]),
        period_end=_time(sub.get("currentPeriodEnd")), trial_ends_at=trial_end, contact_email=email,
    )  # no event_at: our clock is not Shopify's, and its webhooks' updated_at has whole seconds, so a read
    # stamped "now" made the next webhook of the same second look stale (a FROZEN update was ignored)


def normalize_subscription_update(p: Mapping[str, Any]) -> NormalizeResult:
    """`app_subscriptions/update`: {"app_subscription": {admin_graphql_api_id, name, status, updated_at, ...}}."""
    sub = p.get("app_subscription")
    if not isinstance(sub, Mapping) or not isinstance(sub.get("admin_graphql_api_id"), str):
        raise ValueError("app_subscription.admin_graphql_api_id is missing")
    plan = plan_by_name(sub.get("name") if isinstance(sub.get("name"), str) else None)
    status = STATUSES.get(str(sub.get("status")))
    if plan is None or status is None:
        return NormalizeResult(skipped="not one of our plans, or an unknown status")
    return NormalizeResult(event=PlanChanged(
        provider="shopify", status=status, plan=plan.key, subscription_id=sub["admin_graphql_api_id"][:128],
        event_at=_time(sub.get("updated_at")),
    ))  # fmt: skip


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


#: shopify.app.toml's `handle`: Shopify admin serves the embedded app under /apps/<handle>/.
APP_HANDLE = "cartresq"


def embedded_return_url(shop: str) -> str:
    """Where Shopify sends the merchant after approving: the plan page, inside Shopify admin."""
    return f"https://admin.shopify.com/store/{shop.removesuffix('.myshopify.com')}/apps/{APP_HANDLE}/app/billing"
