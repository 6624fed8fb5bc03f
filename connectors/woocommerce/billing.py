"""Stripe Billing for hosted WooCommerce stores, through the maintained `stripe` library.

- `checkout_url`: a Checkout Session in subscription mode for the plan's Price (STRIPE_PRICE_<PLAN>), with a
  14-day trial and the store's id in the subscription's metadata (how its webhooks find the store).
- `portal_url`: a customer portal session (upgrade, downgrade, payment method, cancel).
- `read_event`: a webhook body verified with `stripe.Webhook.construct_event` → (event id, type, store id,
  `PlanChanged`) for customer.subscription.created/updated/deleted and invoice.payment_failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe

from recovery.billing.plans import PLANS, TRIAL_DAYS, plan_by_name
from recovery.model import PlanChanged
from recovery.config.settings import Settings

#: Stripe's subscription.status → recovery.billing.plans statuses.
STATUSES = {
    "trialing": "trial", "active": "active", "past_due": "past_due", "unpaid": "frozen", "paused": "frozen",
    "incomplete": "pending", "incomplete_expired": "cancelled", "canceled": "cancelled",
}  # fmt: skip
SUBSCRIPTION_EVENTS = ("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
TOPICS = (*SUBSCRIPTION_EVENTS, "invoice.payment_failed")


class StripeBillingError(Exception):
    pass


def client(settings: Settings) -> stripe.StripeClient:
    if not settings.stripe_secret_key:
        raise StripeBillingError("STRIPE_SECRET_KEY is not set")
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    return stripe.StripeClient(settings.stripe_secret_key, base_addresses=base, max_network_retries=2)  # type: ignore[arg-type]


def checkout_url(settings: Settings, store_id: int, plan_key: str, success_url: str, cancel_url: str,
                 customer_id: str | None = None, trial_days: int = TRIAL_DAYS) -> str:
    price = settings.stripe_prices.get(plan_key)
    if plan_key not in PLANS or price is None:
        raise StripeBillingError(f"no Stripe price for plan {plan_key} (STRIPE_PRICE_{plan_key.upper()})")
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price, "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(store_id),
        "subscription_data": {"metadata": {"cartresq_store_id": str(store_id)},
                              **({"trial_period_days": trial_days} if trial_days > 0 else {})},
        "metadata": {"cartresq_store_id": str(store_id)},
    }
    if customer_id:
        params["customer"] = customer_id
    try:
        session = client(settings).v1.checkout.sessions.create(params)  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        raise StripeBillingError(f"Stripe refused the checkout session: {type(exc).__name__}") from None
    return str(session.url)


def portal_url(settings: Settings, customer_id: str, return_url: str) -> str:
    try:
        session = client(settings).v1.billing_portal.sessions.create({"customer": customer_id, "return_url": return_url})
    except stripe.StripeError as exc:
        raise StripeBillingError(f"Stripe refused the portal session: {type(exc).__name__}") from None
    return str(session.url)


def customer_email(settings: Settings, customer_id: str) -> str | None:
    """The Stripe customer's email (where plan notices go); None when Stripe cannot say."""
    try:
        customer = client(settings).v1.customers.retrieve(customer_id)
    except (stripe.StripeError, StripeBillingError):
        return None
    email = customer.get("email") if hasattr(customer, "get") else None
    return str(email) if email else None


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    store_id: int | None
    created: datetime
    change: PlanChanged | None


def read_event(settings: Settings, body: bytes, signature: str | None) -> StripeEvent:
    """ValueError (bad payload) or stripe.SignatureVerificationError (bad signature) from the library."""
    if not settings.stripe_webhook_secret or not signature:
        raise stripe.SignatureVerificationError("no signature or no secret", signature)
    stripe.Webhook.construct_event(body, signature, settings.stripe_webhook_secret)  # raises unless signed by Stripe
    event = json.loads(body)  # plain dicts from here on (the verified bytes)
    created = datetime.fromtimestamp(int(event["created"]), UTC)
    obj = event["data"]["object"]
    if event["type"] in SUBSCRIPTION_EVENTS:
        return StripeEvent(event["id"], event["type"], _store_id(obj), created, subscription_change(obj, settings, created))
    if event["type"] == "invoice.payment_failed":
        sub_id = _invoice_subscription(obj)
        change = PlanChanged(provider="stripe", status="past_due", plan=None, subscription_id=sub_id, event_at=created)
        return StripeEvent(event["id"], event["type"], _store_id(obj), created, change)
    return StripeEvent(event["id"], event["type"], None, created, None)


def subscription_change(sub: Mapping[str, Any], settings: Settings, at: datetime) -> PlanChanged:
    items = ((sub.get("items") or {}).get("data")) or [{}]
    item = items[0]
    price = item.get("price") or {}
    by_price = {v: k for k, v in settings.stripe_prices.items()}
    plan = by_price.get(price.get("id")) or (p.key if (p := plan_by_name(price.get("lookup_key"))) else None)
    period_end = item.get("current_period_end") or sub.get("current_period_end")  # on the item since 2025-03-31
    status = STATUSES.get(str(sub.get("status")), "pending")
    return PlanChanged(
        provider="stripe", status=status, plan=plan, subscription_id=str(sub.get("id"))[:128],
        period_end=datetime.fromtimestamp(int(period_end), UTC) if period_end else None,
        trial_ends_at=datetime.fromtimestamp(int(sub["trial_end"]), UTC) if sub.get("trial_end") else None,
        customer_id=str(sub["customer"])[:128] if isinstance(sub.get("customer"), str) else None, event_at=at,
    )


def _store_id(obj: Mapping[str, Any]) -> int | None:
    """From the subscription's metadata (set at checkout), or an invoice's copy of it."""
    metadata = dict(obj.get("metadata") or {})
    details = ((obj.get("parent") or {}).get("subscription_details")) or {}
    metadata.update({k: v for k, v in (details.get("metadata") or {}).items() if k not in metadata})
    lines = ((obj.get("lines") or {}).get("data")) or []
    for line in lines:
        for key, value in (line.get("metadata") or {}).items():
            metadata.setdefault(key, value)
    raw = metadata.get("cartresq_store_id")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def _invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    details = ((invoice.get("parent") or {}).get("subscription_details")) or {}
    sub = details.get("subscription") or invoice.get("subscription")
    return str(sub) if isinstance(sub, str) else None
